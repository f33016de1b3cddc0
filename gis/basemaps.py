"""The live map's base map, from one setting (``GRIDMAP_BASEMAP``).

=====================  ===========================================================================
value                  base map
=====================  ===========================================================================
``none`` (default)     no base map: the grid alone, works with no internet at all
``xyz:<url>``          any XYZ tile service in Web Mercator (WGS84), e.g. a city's own tile server
``tianditu:<key>``     天地图 Tianditu vector map with labels (CGCS2000, which is WGS84 to within a metre)
``gcj02:<url>``        a GCJ-02 tile service (AMap/Gaode style); the overlays are shifted into GCJ-02
=====================  ===========================================================================

``GRIDMAP_BASEMAP_ATTRIBUTION`` is shown in the map's corner (required by most tile services' terms).
A URL is a Leaflet template: ``{z}``, ``{x}``, ``{y}`` and optionally ``{s}`` with ``GRIDMAP_BASEMAP_SUBDOMAINS``.
"""
import re

KINDS = ("none", "xyz", "tianditu", "gcj02")
_TIANDITU = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
             "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
             "&TILECOL={{x}}&tk={key}")


def parse(text, attribution="", subdomains="abc"):
    """The setting's text → ``{"kind", "crs", "layers": [{"url", "subdomains"}], "attribution"}``.

    Raises
    ------
    ValueError
        A kind not in :data:`KINDS`, a URL without ``{z}``/``{x}``/``{y}`` or not http(s), an empty key.
    """
    text = (text or "none").strip()
    kind, _, arg = text.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise ValueError(f"GRIDMAP_BASEMAP must start with one of {', '.join(KINDS)}; got {text!r}")
    if kind == "none":
        return {"kind": "none", "crs": "wgs84", "layers": [], "attribution": attribution}
    if kind == "tianditu":
        if not re.fullmatch(r"[0-9A-Za-z]+", arg):
            raise ValueError("GRIDMAP_BASEMAP=tianditu:<key> needs the Tianditu key (letters and digits)")
        layers = [{"url": _TIANDITU.format(layer=layer, key=arg, s="{s}"), "subdomains": "01234567"}
                  for layer in ("vec", "cva")]  # the map, then its labels
        return {"kind": kind, "crs": "wgs84", "layers": layers, "attribution": attribution or "天地图 Tianditu"}
    if not re.match(r"https?://", arg) or not all(p in arg for p in ("{z}", "{x}", "{y}")):
        raise ValueError(f"GRIDMAP_BASEMAP={kind}:<url> needs an http(s) URL with {{z}}, {{x}} and {{y}}; got {arg!r}")
    return {"kind": kind, "crs": "gcj02" if kind == "gcj02" else "wgs84",
            "layers": [{"url": arg, "subdomains": subdomains}], "attribution": attribution}
