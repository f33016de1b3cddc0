"""The base map setting: each kind, and a clear error for each way of getting it wrong."""
import pytest

from gis import basemaps
from gis.settings import Settings


def test_none_is_the_default_and_has_no_layer():
    assert basemaps.parse(None) == basemaps.parse("none") == {
        "kind": "none", "crs": "wgs84", "layers": [], "attribution": ""}
    assert Settings.from_env({}).basemap["kind"] == "none"


def test_an_xyz_service():
    b = basemaps.parse("xyz:https://tiles.example.cn/{z}/{x}/{y}.png", "© 市测绘院", "abc")
    assert b == {"kind": "xyz", "crs": "wgs84", "attribution": "© 市测绘院",
                 "layers": [{"url": "https://tiles.example.cn/{z}/{x}/{y}.png", "subdomains": "abc"}]}


def test_tianditu_has_the_map_and_its_labels_with_the_key():
    b = basemaps.parse("tianditu:0123abcd")
    assert b["crs"] == "wgs84" and b["attribution"] == "天地图 Tianditu"
    vec, cva = (layer["url"] for layer in b["layers"])
    assert vec.startswith("https://t{s}.tianditu.gov.cn/vec_w/wmts?") and "LAYER=vec" in vec
    assert "cva_w" in cva and "LAYER=cva" in cva
    for url in (vec, cva):
        assert "TILEMATRIX={z}&TILEROW={y}&TILECOL={x}" in url and url.endswith("&tk=0123abcd")


def test_a_gcj02_service_shifts_the_overlays():
    b = basemaps.parse("gcj02:https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}", "高德", "1234")
    assert (b["kind"], b["crs"], b["layers"][0]["subdomains"]) == ("gcj02", "gcj02", "1234")


def test_the_environment_reaches_the_settings():
    s = Settings.from_env({"GRIDMAP_BASEMAP": "xyz:http://10.0.0.5/t/{z}/{x}/{y}.png",
                           "GRIDMAP_BASEMAP_ATTRIBUTION": "内网底图"})
    assert s.basemap["layers"][0]["url"] == "http://10.0.0.5/t/{z}/{x}/{y}.png"
    assert s.basemap["attribution"] == "内网底图"


@pytest.mark.parametrize("text, message", [
    ("google:x", "GRIDMAP_BASEMAP must start with one of none, xyz, tianditu, gcj02; got 'google:x'"),
    ("xyz:https://tiles.example.cn/{z}/{x}.png", "needs an http(s) URL with {z}, {x} and {y}"),
    ("xyz:ftp://tiles.example.cn/{z}/{x}/{y}.png", "needs an http(s) URL"),
    ("gcj02:", "needs an http(s) URL"),
    ("tianditu:", "needs the Tianditu key"),
    ("tianditu:abc&tk=evil", "needs the Tianditu key"),
])
def test_bad_settings_say_what_is_wrong(text, message):
    with pytest.raises(ValueError) as err:
        basemaps.parse(text)
    assert message in str(err.value)


def test_the_content_security_policy_lets_in_only_the_app_and_the_base_maps_tiles():
    from webmap.security import content_security_policy

    offline = content_security_policy(basemaps.parse("none"))
    assert "script-src 'self'" in offline and "connect-src 'self'" in offline
    assert "img-src 'self' data: blob:;" in offline + ";"
    amap = content_security_policy(basemaps.parse(
        "gcj02:https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}", subdomains="1234"))
    assert "img-src 'self' data: blob: https://*.is.autonavi.com" in amap
    tianditu = content_security_policy(basemaps.parse("tianditu:abc123"))
    assert "https://*.tianditu.gov.cn" in tianditu
