"""The pages' language: Simplified Chinese by default, English on request (Flask-Babel catalogues).

``?lang=en`` (or ``zh``) chooses and is remembered in a cookie for a year; the catalogues are
``webmap/translations/<lang>/LC_MESSAGES/messages.po``, compiled to ``.mo`` by ``make setup``.
Message ids are English, so English needs no catalogue.
"""
from flask import request
from flask_babel import Babel

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT = "zh"
COOKIE = "gridmap_lang"


def select_locale():
    asked = request.args.get("lang") or request.cookies.get(COOKIE)
    return asked if asked in LANGUAGES else DEFAULT


def init_app(app):
    Babel(app, locale_selector=select_locale, default_locale=DEFAULT)

    @app.after_request
    def remember_language(response):
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
            response.set_cookie(COOKIE, asked, max_age=365 * 86400, samesite="Lax")
        return response
