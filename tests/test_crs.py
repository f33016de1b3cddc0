"""Tests of gis.crs: CRS parsing, GCJ-02/BD-09 against published vectors, pyproj CRSs, areas."""
import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from gis import crs
from gis.crs import CrsSpec, area_m2, from_wgs84, metric_crs_for, parse_crs, to_wgs84, transform_geometries
from gis.errors import BadInput

GEOD = pyproj.Geod(ellps="WGS84")
ZHENGZHOU = (113.6654, 34.7566)


def metres(lon1, lat1, lon2, lat2):
    """Geodesic distance(s) in metres."""
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


# --- parsing --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, name, kind, epsg", [
    ("EPSG:4326", "EPSG:4326", "epsg", 4326),
    ("epsg:4547", "EPSG:4547", "epsg", 4547),
    (" EPSG:4547 ", "EPSG:4547", "epsg", 4547),
    ("4326", "EPSG:4326", "epsg", 4326),
    ("wgs84", "EPSG:4326", "epsg", 4326),
    ("WGS84", "EPSG:4326", "epsg", 4326),
    ("cgcs2000", "EPSG:4490", "epsg", 4490),
    ("CGCS2000", "EPSG:4490", "epsg", 4490),
    ("gcj02", "gcj02", "gcj02", None),
    ("GCJ02", "gcj02", "gcj02", None),
    ("bd09", "bd09", "bd09", None),
    ("BD09", "bd09", "bd09", None),
])
def test_parse_accepted_forms(text, name, kind, epsg):
    assert parse_crs(text) == CrsSpec(name, kind, epsg)


def test_parse_other_inputs():
    spec = parse_crs("EPSG:4547")
    assert parse_crs(spec) is spec
    assert parse_crs(pyproj.CRS.from_epsg(4547)) == spec
    assert parse_crs(4547) == spec


@pytest.mark.parametrize("bad", ["EPSG:999999", "999999", "", "   ", "foo", "gcj-03", "EPSG:", "EPSG:5773", None, 4.5, True])
def test_parse_rejects(bad):
    with pytest.raises(BadInput) as info:
        parse_crs(bad)
    # the message must tell the user what would have worked
    assert "wgs84" in info.value.message and "gcj02" in info.value.message and "EPSG:" in info.value.message


def test_parse_rejects_crs_without_epsg_code():
    with pytest.raises(BadInput):
        parse_crs(pyproj.CRS("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80"))


def test_spec_properties():
    assert parse_crs("wgs84").is_wgs84_like and parse_crs("cgcs2000").is_wgs84_like
    assert not parse_crs("EPSG:4547").is_wgs84_like
    assert not parse_crs("gcj02").is_wgs84_like and not parse_crs("bd09").is_wgs84_like
    assert parse_crs("4326").is_geographic and parse_crs("gcj02").is_geographic and parse_crs("bd09").is_geographic
    assert not parse_crs("EPSG:4547").is_geographic
    with pytest.raises(AttributeError):  # frozen
        parse_crs("4326").epsg = 4490


# --- GCJ-02 and BD-09 against published values -------------------------------------------------

# (wgs_lon, wgs_lat, gcj_lon, gcj_lat), full precision.
GCJ_PUBLISHED = [
    # googollee/eviltransform, go/transform_test.go and python/test.py (Shanghai, Shenzhen, Beijing)
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
    # wandergis/coordtransform, test/app.js: wgs84togcj02(116.404, 39.915) (Tiananmen)
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),
]


@pytest.mark.parametrize("wlon, wlat, glon, glat", GCJ_PUBLISHED)
def test_gcj02_published_pairs(wlon, wlat, glon, glat):
    # The forward formula is deterministic: full-precision values must agree to float rounding,
    # so 1 mm, not 1 m (a slip such as a wrong ellipsoid constant moves results by cm to dm).
    assert metres(*from_wgs84(wlon, wlat, "gcj02"), glon, glat) < 0.001
    assert metres(*to_wgs84(glon, glat, "gcj02"), wlon, wlat) < 0.5


def test_bd09_published_pair():
    # wandergis/coordtransform, test/app.js: gcj02tobd09(116.404, 39.915)
    # = (116.41036949371029, 39.92133699351021). Both are the same place, so must map to one WGS84 point.
    gcj, bd = (116.404, 39.915), (116.41036949371029, 39.92133699351021)
    wgs = to_wgs84(*gcj, "gcj02")
    assert metres(*to_wgs84(*bd, "bd09"), *wgs) < 0.5
    assert metres(*from_wgs84(*wgs, "bd09"), *bd) < 0.001
    # Same file: bd09togcj02(116.404, 39.915) = (116.39762729119315, 39.90865673957631), from the
    # usual closed-form inverse, which is good to a few cm; our iterative inverse must agree.
    assert metres(*to_wgs84(116.404, 39.915, "bd09"),
                  *to_wgs84(116.39762729119315, 39.90865673957631, "gcj02")) < 0.5


def test_beijing_railway_station_all_three_datums():
    # cran/geoChina, R/conv.R examples: Beijing railway station
    # WGS-84 (39.90105, 116.42079), GCJ-02 (39.90245, 116.42703), BD-09 (39.90851, 116.43351).
    # Published to 1e-5 degrees (~1 m), so both directions are checked to 1 m here; the
    # full-precision pairs above check the inverse to 0.5 m.
    wgs, gcj, bd = (116.42079, 39.90105), (116.42703, 39.90245), (116.43351, 39.90851)
    assert metres(*from_wgs84(*wgs, "gcj02"), *gcj) < 1.0
    assert metres(*from_wgs84(*wgs, "bd09"), *bd) < 1.5
    assert metres(*to_wgs84(*gcj, "gcj02"), *wgs) < 1.0
    assert metres(*to_wgs84(*bd, "bd09"), *wgs) < 1.5
    # and the shifts are the real, large ones
    assert 500 < metres(*wgs, *gcj) < 600
    assert 1200 < metres(*wgs, *bd) < 1400


def china_grid():
    lon, lat = np.meshgrid(np.linspace(73.6, 134.9, 120), np.linspace(18.2, 53.5, 80))
    return lon.ravel(), lat.ravel()


@pytest.mark.parametrize("kind", ["gcj02", "bd09"])
def test_round_trip_over_china(kind):
    lon, lat = china_grid()
    shifted = from_wgs84(lon, lat, kind)
    assert np.all(metres(lon, lat, *shifted) > 10)  # the datum really moves every point
    assert np.max(metres(lon, lat, *from_wgs84(*to_wgs84(lon, lat, kind), kind))) < 0.01
    assert np.max(metres(lon, lat, *to_wgs84(*shifted, kind))) < 0.01


@pytest.mark.parametrize("kind", ["gcj02", "bd09"])
@pytest.mark.parametrize("lon, lat", [
    (139.6917, 35.6895), (-0.1276, 51.5072), (151.2093, -33.8688),  # Tokyo, London, Sydney
    (129.7331, 62.0355), (106.8456, -6.2088),  # Yakutsk and Jakarta: within the box's longitudes
    (69.2401, 41.2995),  # Tashkent: within its latitudes
])
def test_no_shift_outside_china(kind, lon, lat):
    assert from_wgs84(lon, lat, kind) == (lon, lat)
    assert to_wgs84(lon, lat, kind) == (lon, lat)


def test_cgcs2000_is_not_shifted():
    assert to_wgs84(*ZHENGZHOU, "cgcs2000") == ZHENGZHOU
    assert from_wgs84(*ZHENGZHOU, "EPSG:4490") == ZHENGZHOU


# --- projected CGCS2000 -----------------------------------------------------------------------

def test_epsg4547_zhengzhou():
    easting, northing = from_wgs84(*ZHENGZHOU, "EPSG:4547")
    # 0.33 degrees west of CM 114E at 34.8N is ~30.6 km; no zone prefix in this CM-only variant
    assert 468_000 < easting < 471_000
    assert 3_840_000 < northing < 3_860_000
    # independent check with the explicit projection definition
    tmerc = pyproj.Transformer.from_crs(
        "EPSG:4326", "+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m",
        always_xy=True)
    expected = tmerc.transform(*ZHENGZHOU)
    assert easting == pytest.approx(expected[0], abs=0.01)
    assert northing == pytest.approx(expected[1], abs=0.01)
    lon, lat = to_wgs84(easting, northing, "epsg:4547")
    assert metres(lon, lat, *ZHENGZHOU) < 1e-6


def test_epsg4547_central_meridian_is_114():
    params = {p.name: p.value for p in pyproj.CRS.from_epsg(4547).coordinate_operation.params}
    assert params["Longitude of natural origin"] == 114


@pytest.mark.parametrize("lon, code, cm", [
    (113.6654, "EPSG:4547", 114), (116.4, "EPSG:4548", 117), (121.47, "EPSG:4549", 120),
    (87.6, "EPSG:4538", 87), (73.6, "EPSG:4534", 75), (135.0, "EPSG:4554", 135), (115.49, "EPSG:4547", 114),
])
def test_metric_crs_for(lon, code, cm):
    assert metric_crs_for(lon, 35.0) == code
    params = {p.name: p.value for p in pyproj.CRS(code).coordinate_operation.params}
    assert params["Longitude of natural origin"] == cm


@pytest.mark.parametrize("lon, lat", [(-0.13, 51.5), (139.7, 35.7), (float("nan"), 30.0), (114.0, 95.0)])
def test_metric_crs_for_rejects_points_outside_the_zones(lon, lat):
    with pytest.raises(BadInput):
        metric_crs_for(lon, lat)


# --- shapes and geometries --------------------------------------------------------------------

def test_scalars_give_floats_and_arrays_keep_their_shape():
    lon, lat = to_wgs84(116.404, 39.915, "gcj02")
    assert type(lon) is float and type(lat) is float
    grid_lon = np.full((3, 4), 116.404)
    grid_lat = np.linspace(39.9, 40.0, 12).reshape(3, 4)
    for kind in ("gcj02", "bd09", "EPSG:4547", "wgs84"):
        x, y = from_wgs84(grid_lon, grid_lat, kind)
        assert x.shape == y.shape == (3, 4)
        assert x.dtype == np.float64
        # each element equals the scalar conversion of that element
        assert (x[1, 2], y[1, 2]) == pytest.approx(from_wgs84(116.404, float(grid_lat[1, 2]), kind), abs=1e-9)
    # broadcasting a scalar against an array
    x, y = from_wgs84(116.404, [39.9, 40.0], "gcj02")
    assert x.shape == (2,) and x[0] != 116.404
    assert from_wgs84([], [], "gcj02")[0].shape == (0,)


def test_inputs_are_not_modified():
    lon, lat = np.array([116.404, 113.6654]), np.array([39.915, 34.7566])
    from_wgs84(lon, lat, "bd09")
    to_wgs84(lon, lat, "gcj02")
    assert lon.tolist() == [116.404, 113.6654] and lat.tolist() == [39.915, 34.7566]


def test_transform_polygon_from_gauss_krueger():
    e, n = from_wgs84(*ZHENGZHOU, "EPSG:4547")
    square = Polygon([(e, n), (e + 1000, n), (e + 1000, n + 1000), (e, n + 1000)])
    result = transform_geometries(square, "EPSG:4547")
    assert isinstance(result, Polygon)
    xs, ys = np.array(square.exterior.coords).T
    np.testing.assert_allclose(np.array(result.exterior.coords).T, to_wgs84(xs, ys, "EPSG:4547"), atol=1e-12)
    assert result.exterior.coords[0] == pytest.approx(ZHENGZHOU, abs=1e-9)
    assert area_m2(result) == pytest.approx(1e6, rel=1e-3)  # GK scale at 30 km from CM is ~1.00001


def test_transform_array_gcj02_to_wgs84_and_back():
    geoms = np.array([Point(116.404, 39.915), LineString([(116.40, 39.91), (116.41, 39.92)]), None,
                      Polygon([(113.66, 34.75), (113.67, 34.75), (113.67, 34.76)])], dtype=object)
    wgs = transform_geometries(geoms, "gcj02")
    assert wgs.shape == (4,) and wgs[2] is None
    assert wgs[0].coords[0] == pytest.approx(to_wgs84(116.404, 39.915, "gcj02"), abs=1e-12)
    assert metres(116.404, 39.915, *wgs[0].coords[0]) > 100
    back = transform_geometries(wgs, "EPSG:4326", "GCJ02")
    for before, after in zip(geoms[[0, 1, 3]], back[[0, 1, 3]]):
        assert np.max(np.abs(shapely.get_coordinates(before) - shapely.get_coordinates(after))) < 1e-8


def test_transform_between_non_wgs84_crs():
    gcj = Point(from_wgs84(*ZHENGZHOU, "gcj02"))
    # gcj02 -> EPSG:4547 goes through WGS84
    projected = transform_geometries(gcj, "gcj02", "EPSG:4547")
    assert projected.coords[0] == pytest.approx(from_wgs84(*ZHENGZHOU, "EPSG:4547"), abs=1e-3)
    # EPSG:4547 -> EPSG:4546 (neighbouring zone, CM 111E): pyproj directly
    neighbour = transform_geometries(projected, "EPSG:4547", "EPSG:4546")
    assert neighbour.coords[0] == pytest.approx(from_wgs84(*ZHENGZHOU, "EPSG:4546"), abs=1e-3)
    assert neighbour.x > 700_000  # 2.67 degrees east of CM 111E


def test_transform_keeps_z():
    point = transform_geometries(Point(116.404, 39.915, 52.0), "gcj02")
    assert point.has_z and point.z == 52.0
    assert point.x == pytest.approx(to_wgs84(116.404, 39.915, "gcj02")[0], abs=1e-12)


def test_transform_rejects_bad_crs():
    with pytest.raises(BadInput):
        transform_geometries(Point(0, 0), "EPSG:999999")


# --- areas --------------------------------------------------------------------------------------

def test_area_matches_geodesic_area_in_zhengzhou():
    lon, lat = ZHENGZHOU
    polygon = Polygon([(lon, lat), (lon + 0.02, lat - 0.003), (lon + 0.025, lat + 0.015),
                       (lon + 0.004, lat + 0.02), (lon - 0.006, lat + 0.01)])
    geodesic = abs(GEOD.geometry_area_perimeter(polygon)[0])
    assert 3e6 < geodesic < 6e6
    assert area_m2(polygon) == pytest.approx(geodesic, rel=1e-3)
    # also through the Gauss-Krueger zone chosen for the point
    zone = transform_geometries(polygon, "EPSG:4326", metric_crs_for(lon, lat))
    assert zone.area == pytest.approx(geodesic, rel=1e-3)


def test_area_is_vectorised():
    lon, lat = ZHENGZHOU
    cells = shapely.box([lon, lon + 0.01], [lat, lat + 0.01], [lon + 0.01, lon + 0.02], [lat + 0.01, lat + 0.02])
    areas = area_m2(cells)
    assert areas.shape == (2,)
    expected = [abs(GEOD.geometry_area_perimeter(c)[0]) for c in cells]
    np.testing.assert_allclose(areas, expected, rtol=1e-3)
    assert area_m2(Point(lon, lat)) == 0.0


def test_module_exports():
    assert set(crs.__all__) >= {"parse_crs", "to_wgs84", "from_wgs84", "transform_geometries",
                                "metric_crs_for", "area_m2", "CrsSpec"}
