// GCJ-02, the coordinates of Chinese web maps (AMap/Gaode, Tencent): the same formula as gis/crs.py, for a
// Leaflet CRS whose projection shifts WGS84 into GCJ-02 before Web Mercator. Every overlay given in WGS84
// (markers, circles, bounds) then lands on a GCJ-02 base map without being touched; vector tiles are asked
// with crs=gcj02 so the server shifts their cells the same way.
(function () {
  "use strict";
  const A = 6378245.0, EE = 0.00669342162296594323;  // Krasovsky 1940, as the formula has it

  function inChina(lon, lat) { return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271; }

  function offset(lon, lat) {  // GCJ-02 minus WGS84 in degrees, at WGS84 (lon, lat)
    const x = lon - 105.0, y = lat - 35.0, s = Math.sin, P = Math.PI;
    const shared = 20.0 * s(6.0 * P * x) + 20.0 * s(2.0 * P * x);
    const north = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) +
      (shared + 20.0 * s(P * y) + 40.0 * s(P * y / 3.0) + 160.0 * s(P * y / 12.0) + 320.0 * s(P * y / 30.0)) * 2.0 / 3.0;
    const east = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) +
      (shared + 20.0 * s(P * x) + 40.0 * s(P * x / 3.0) + 150.0 * s(P * x / 12.0) + 300.0 * s(P * x / 30.0)) * 2.0 / 3.0;
    const phi = lat * P / 180, w = 1.0 - EE * s(phi) ** 2;
    const meridian = A * (1.0 - EE) / (w * Math.sqrt(w)), normal = A / Math.sqrt(w);
    return [east / (normal * Math.cos(phi)) * 180 / P, north / meridian * 180 / P];
  }

  function wgsToGcj(lon, lat) {
    if (!inChina(lon, lat)) return [lon, lat];
    const [dx, dy] = offset(lon, lat);
    return [lon + dx, lat + dy];
  }

  // The inverse by fixed-point iteration: the offset changes by ~1e-3 of a step, so a few steps reach 1e-9°.
  function gcjToWgs(lon, lat) {
    let x = lon, y = lat;
    for (let i = 0; i < 30; i++) {
      const [fx, fy] = wgsToGcj(x, y), dx = fx - lon, dy = fy - lat;
      x -= dx; y -= dy;
      if (!(Math.abs(dx) > 1e-9 || Math.abs(dy) > 1e-9)) break;
    }
    return [x, y];
  }

  const mercator = L.Projection.SphericalMercator;
  const projection = {
    bounds: mercator.bounds,
    project(latlng) { const [lon, lat] = wgsToGcj(latlng.lng, latlng.lat); return mercator.project(L.latLng(lat, lon)); },
    unproject(point) { const ll = mercator.unproject(point), [lon, lat] = gcjToWgs(ll.lng, ll.lat); return L.latLng(lat, lon); },
  };
  L.CRS.GCJ02 = L.extend({}, L.CRS.EPSG3857, { code: "GCJ02", projection });
  window.gcj02 = { wgsToGcj, gcjToWgs };
})();
