"""Time to the first drawn live map in headless Chromium (Debian's), on the Zhengzhou demo and its history.

Ours: ``/map`` from navigation start to ``body[data-ready=true]``: the page, its scripts, the legend's class
breaks and the first screen of vector tiles (streets, 7 days) drawn. The peer: ``/``, the grid page, drawing
the city's districts and streets from GeoJSON (``/api/v1/grids``) — what the platform served before the tiles.
Each load is cold (a new browser context: empty cache), the two by turns on one threaded server on loopback;
the time is taken in the page (``performance.now()`` when the flag is set), so the test harness's polling
adds nothing.

Both pages are seen by a city-wide ``viewer`` (a user made in the bench database), who signs in once through
the sign-in form; each cold context starts with that session's cookie alone, as a browser whose cache was
emptied while its user stayed signed in (signing in is not part of the time, nor does its page warm the cache).
"""
import logging
import statistics
import threading
from urllib.parse import urlsplit

from werkzeug.serving import make_server

from bench.bench_tiles import ensure_demo
from bench.credentials import secret_key, user

RUNS = 7
TARGET_S = 2.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# set before any script of the page runs: the moment the page says it is drawn
READY_CLOCK = """document.addEventListener("DOMContentLoaded", () => {
    const drawn = () => document.body.dataset.ready === "true";
    new MutationObserver((_, observer) => {
        if (drawn()) { window.__drawnAt = performance.now(); observer.disconnect(); }
    }).observe(document.body, {attributes: true, attributeFilter: ["data-ready"]});
});"""


def signed_in(browser, base, name, password):
    """Sign in through the form, as a user does; the browser's state afterwards (the session cookie) to start
    cold contexts with. Lands on a JSON answer, so that no page of the app is loaded or cached."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{base}/login?next=/api/v1/me")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/api/v1/me")
        return context.storage_state()
    finally:
        context.close()


def first_draw_s(browser, url, state=None):
    """Seconds from navigation start to the page drawn, in a new context (empty cache) with ``state``
    (:func:`signed_in`)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, storage_state=state)
    try:
        page = context.new_page()
        page.add_init_script(READY_CLOCK)
        page.goto(url)
        if urlsplit(page.url).path != urlsplit(url).path:
            raise RuntimeError(f"{url} sent the browser to {page.url}: not signed in?")
        page.wait_for_function("() => window.__drawnAt !== undefined", timeout=60000)
        return page.evaluate("() => window.__drawnAt") / 1000
    finally:
        context.close()


def run(db, rows):
    from playwright.sync_api import sync_playwright

    from webmap import create_app

    ensure_demo(db)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request in the bench's output
    name, password = user(db, "map", role="viewer")
    app = create_app({"DATABASE_URL": db.url, "ROUTE_IN_WORKER": False, "SECRET_KEY": secret_key()})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    ours, peer = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            state = signed_in(browser, base, name, password)
            first_draw_s(browser, base + "/map", state)  # warm-up: the server's caches, PROJ, the pool
            for _ in range(RUNS):
                ours.append(first_draw_s(browser, base + "/map", state))
                peer.append(first_draw_s(browser, base + "/", state))
            browser.close()
    finally:
        server.shutdown()
        app.extensions["gridmap_db"].close()
    figure, peer_figure = statistics.median(ours), statistics.median(peer)
    print(f"  /map first drawn: median {figure:.2f} s (runs {', '.join(f'{t:.2f}' for t in ours)}); "
          f"/ from GeoJSON: median {peer_figure:.2f} s")
    rows.append(dict(name="live map first drawn in headless Chromium, median", figure=figure, unit="s",
                     peer="the grid page drawing districts and streets from GeoJSON (/api/v1/grids)",
                     peer_figure=peer_figure, ratio=figure / peer_figure, target=f"< {TARGET_S:g} s",
                     met=figure < TARGET_S))
