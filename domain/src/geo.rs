//! Coordinates between the three datums Chinese maps use, distances, arrival estimates and
//! links that open each map provider's navigation at a destination.
//!
//! GPS receivers report WGS-84; Amap and Tencent Maps draw in GCJ-02; Baidu Maps in BD-09. The
//! conversions come from the `coordtransform` crate, whose inverses are iterative (round trips
//! agree to about 1e-9 degrees); the tests hold it to published reference points.

use chrono::{DateTime, Duration, Utc};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use crate::values::{CoordinateSystem, GeoPoint};

impl GeoPoint {
    /// The same place expressed in another datum.
    pub fn to_system(self, system: CoordinateSystem) -> GeoPoint {
        use coordtransform as ct;
        use CoordinateSystem::{Bd09, Gcj02, Wgs84};
        let (lon, lat) = (self.longitude, self.latitude);
        let (longitude, latitude) = match (self.system, system) {
            (from, to) if from == to => (lon, lat),
            (Wgs84, Gcj02) => ct::wgs84_to_gcj02(lon, lat),
            (Wgs84, Bd09) => ct::wgs84_to_bd09(lon, lat),
            (Gcj02, Wgs84) => ct::gcj02_to_wgs84(lon, lat),
            (Gcj02, Bd09) => ct::gcj02_to_bd09(lon, lat),
            (Bd09, Gcj02) => ct::bd09_to_gcj02(lon, lat),
            (Bd09, Wgs84) => ct::bd09_to_wgs84(lon, lat),
            _ => unreachable!("every pair of datums is listed"),
        };
        GeoPoint {
            latitude,
            longitude,
            system,
        }
    }

    /// The place to the precision public answers are made at: the centre line of a grid of
    /// `1 / COARSE_PER_DEGREE` degrees (about 1.1 km north to south, 1 km east to west in
    /// China), in its own datum. Measuring only between such points, a public answer depends
    /// on which cells two places lie in, never on where in its cell a worker's base is.
    pub fn coarse(self) -> GeoPoint {
        let snap = |degrees: f64| (degrees * COARSE_PER_DEGREE).round() / COARSE_PER_DEGREE;
        GeoPoint {
            latitude: snap(self.latitude),
            longitude: snap(self.longitude),
            system: self.system,
        }
    }

    /// Great-circle distance in metres. Points in different datums are first brought into one
    /// (a datum offset is hundreds of metres). Two points already in the same datum are measured
    /// as they are: the GCJ-02 and BD-09 offsets change slowly across a city (well under 0.5%
    /// of the distance), and skipping the conversion keeps pricing a dispatch round of five
    /// million pairs fast.
    pub fn distance_m(self, other: GeoPoint) -> f64 {
        let other = other.to_system(self.system);
        haversine_m(
            self.latitude,
            self.longitude,
            other.latitude,
            other.longitude,
        )
    }
}

/// Grid lines per degree of the public precision (`GeoPoint::coarse`).
pub const COARSE_PER_DEGREE: f64 = 100.0;

/// The farthest a point can be from its cell's centre: half the diagonal of a cell of
/// 0.01° by 0.01° at the equator (where a cell is widest), rounded up.
pub const CELL_HALF_DIAGONAL_M: f64 = 790.0;

/// Mean earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = phi2 - phi1;
    let d_lambda = (lon2 - lon1).to_radians();
    let h = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// City driving speed the estimates assume, in km/h. Roads wind: the straight line is
/// stretched by `DETOUR` before dividing.
const CITY_SPEED_KMH: f64 = 20.0;
const DETOUR: f64 = 1.3;

/// Minutes to drive from `from` to `to` through the city, rounded up to a whole minute.
pub fn driving_minutes(from: GeoPoint, to: GeoPoint) -> i64 {
    let kilometres = from.distance_m(to) / 1000.0 * DETOUR;
    (kilometres / CITY_SPEED_KMH * 60.0).ceil() as i64
}

/// When a worker at `from` at `now` should reach `to`.
pub fn estimated_arrival(from: GeoPoint, to: GeoPoint, now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::minutes(driving_minutes(from, to))
}

/// Links that open navigation to a destination in each provider's app or web map, each with
/// the destination in that provider's own datum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NavigationLinks {
    /// Amap (高德地图), GCJ-02.
    pub amap: String,
    /// Baidu Maps (百度地图), BD-09.
    pub baidu: String,
    /// Tencent Maps (腾讯地图), GCJ-02.
    pub tencent: String,
}

/// Who the map providers are told is asking (their `src` / `referer` parameter).
pub const MAP_SOURCE: &str = "anjia";

pub fn navigation_links(destination: GeoPoint, name: &str) -> NavigationLinks {
    let gcj = destination.to_system(CoordinateSystem::Gcj02);
    let bd = destination.to_system(CoordinateSystem::Bd09);
    let name = utf8_percent_encode(name, NON_ALPHANUMERIC).to_string();
    NavigationLinks {
        // lbs.amap.com URI API, route navigation: to=lon,lat,name; coordinates in GCJ-02.
        amap: format!(
            "https://uri.amap.com/navigation?to={:.6},{:.6},{name}&mode=car&policy=1&src={MAP_SOURCE}&coordinate=gaode&callnative=1",
            gcj.longitude, gcj.latitude
        ),
        // lbsyun.baidu.com URI API (web): destination latlng is lat,lng; coord_type names the datum.
        baidu: format!(
            "https://api.map.baidu.com/direction?origin=%E6%88%91%E7%9A%84%E4%BD%8D%E7%BD%AE&destination=latlng:{:.6},{:.6}%7Cname:{name}&mode=driving&coord_type=bd09ll&output=html&src={MAP_SOURCE}",
            bd.latitude, bd.longitude
        ),
        // lbs.qq.com URI API, route planning: tocoord is lat,lng in Tencent's own datum (GCJ-02).
        tencent: format!(
            "https://apis.map.qq.com/uri/v1/routeplan?type=drive&to={name}&tocoord={:.6},{:.6}&policy=0&referer={MAP_SOURCE}",
            gcj.latitude, gcj.longitude
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CoordinateSystem::{Bd09, Gcj02, Wgs84};

    fn point(latitude: f64, longitude: f64, system: CoordinateSystem) -> GeoPoint {
        GeoPoint::new(latitude, longitude, system).unwrap()
    }

    /// Metres between a converted point and the published one, both read in the same datum.
    fn gap_m(converted: GeoPoint, expected: GeoPoint) -> f64 {
        assert_eq!(converted.system, expected.system);
        haversine_m(
            converted.latitude,
            converted.longitude,
            expected.latitude,
            expected.longitude,
        )
    }

    /// A published pair: (latitude, longitude) in one datum and the same place in another.
    type Pair = ((f64, f64), (f64, f64));

    /// Published WGS-84 → GCJ-02 pairs (latitude, longitude):
    /// googollee/eviltransform `go/transform_test.go` (Shanghai, Shenzhen, Beijing) and the
    /// wandergis/coordtransform README (Beijing, 116.404, 39.915).
    const WGS_TO_GCJ: [Pair; 4] = [
        (
            (31.1774276, 121.5272106),
            (31.17530398364597, 121.531541859215),
        ),
        (
            (22.543847, 113.912316),
            (22.540796131694766, 113.9171764808363),
        ),
        (
            (39.911954, 116.377817),
            (39.91334545536069, 116.38404722455657),
        ),
        ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),
    ];

    /// Published GCJ-02 → BD-09 pairs: athxx/coordtransform-rs `src/lib.rs` (Beijing) and the
    /// coord-transform crate's documentation example (118.0, 32.0).
    const GCJ_TO_BD: [Pair; 2] = [
        ((39.915, 116.404), (39.92133699351022, 116.41036949371029)),
        ((32.0, 118.0), (32.00581846664105, 118.00653128313961)),
    ];

    /// Published WGS-84 → BD-09 pairs: wyxloading/coordtransform-rs `tests/tests.rs` and the
    /// coord-transform crate's documentation example.
    const WGS_TO_BD: [Pair; 2] = [
        ((39.915, 116.404), (39.922699552216216, 116.41662724378733)),
        ((32.0, 118.0), (32.00370423982076, 118.01198481069936)),
    ];

    fn check(pairs: &[Pair], from: CoordinateSystem, to: CoordinateSystem) {
        for ((lat, lon), (expected_lat, expected_lon)) in pairs {
            let source = point(*lat, *lon, from);
            let expected = point(*expected_lat, *expected_lon, to);
            let forward = gap_m(source.to_system(to), expected);
            assert!(
                forward < 1.0,
                "{lat},{lon} {from:?}→{to:?} is {forward} m off"
            );
            let back = gap_m(expected.to_system(from), source);
            assert!(back < 1.0, "{lat},{lon} {to:?}→{from:?} is {back} m off");
        }
    }

    #[test]
    fn wgs84_and_gcj02_agree_with_published_points_to_under_a_metre() {
        check(&WGS_TO_GCJ, Wgs84, Gcj02);
    }

    #[test]
    fn gcj02_and_bd09_agree_with_published_points_to_under_a_metre() {
        check(&GCJ_TO_BD, Gcj02, Bd09);
    }

    #[test]
    fn wgs84_and_bd09_agree_with_published_points_to_under_a_metre() {
        check(&WGS_TO_BD, Wgs84, Bd09);
    }

    #[test]
    fn round_trips_through_every_datum_stay_within_a_centimetre() {
        // Beijing, Shanghai, Guangzhou, Chengdu, Harbin, Xi'an, Wuhan, Kunming.
        for (latitude, longitude) in [
            (39.9, 116.4),
            (31.2, 121.5),
            (23.1, 113.3),
            (30.7, 104.1),
            (45.8, 126.6),
            (34.3, 108.9),
            (30.6, 114.3),
            (25.0, 102.7),
        ] {
            {
                let start = point(latitude, longitude, Wgs84);
                for path in [[Gcj02, Bd09], [Bd09, Gcj02]] {
                    let there = start.to_system(path[0]).to_system(path[1]);
                    let back = there.to_system(Wgs84);
                    assert!(gap_m(back, start) < 0.01, "{start:?} via {path:?}");
                }
            }
        }
    }

    #[test]
    fn outside_china_no_offset_is_applied() {
        let london = point(51.5074, -0.1278, Wgs84);
        let gcj = london.to_system(Gcj02);
        assert_eq!((gcj.latitude, gcj.longitude), (51.5074, -0.1278));
    }

    #[test]
    fn distance_compares_points_in_one_datum() {
        // The People's Square in Shanghai, once in GCJ-02 and once in WGS-84: the same place.
        let gcj = point(31.2304, 121.4737, Gcj02);
        let wgs = gcj.to_system(Wgs84);
        assert!(gcj.distance_m(wgs) < 0.01);
        // Roughly 500 m apart, these two differ by the datum offset (hundreds of metres) if
        // compared naively; the distance must not.
        let naive = haversine_m(gcj.latitude, gcj.longitude, wgs.latitude, wgs.longitude);
        assert!(
            naive > 100.0,
            "the offset in Shanghai is hundreds of metres"
        );
    }

    #[test]
    fn distances_within_one_datum_agree_with_wgs84_to_half_a_percent() {
        let centre = point(31.2304, 121.4737, Gcj02);
        for (north, east) in [(0.01, 0.0), (0.0, 0.05), (-0.08, 0.1), (0.2, -0.2)] {
            let other = point(31.2304 + north, 121.4737 + east, Gcj02);
            let direct = centre.distance_m(other);
            let a = centre.to_system(Wgs84);
            let b = other.to_system(Wgs84);
            let true_distance = haversine_m(a.latitude, a.longitude, b.latitude, b.longitude);
            assert!(
                (direct - true_distance).abs() <= true_distance * 0.005,
                "{direct} vs {true_distance}"
            );
        }
    }

    #[test]
    fn driving_time_grows_with_distance() {
        let home = point(31.2304, 121.4737, Gcj02);
        let near = point(31.2394, 121.4737, Gcj02); // about 1 km north
        let far = point(31.3204, 121.4737, Gcj02); // about 10 km north
        assert_eq!(driving_minutes(home, home), 0);
        assert_eq!(driving_minutes(home, near), 4);
        assert_eq!(driving_minutes(home, far), 40);
    }

    #[test]
    fn navigation_links_carry_the_destination_in_each_providers_datum() {
        let wgs = point(31.1774276, 121.5272106, Wgs84);
        let links = navigation_links(wgs, "世纪大道 100 号");
        let gcj = wgs.to_system(Gcj02);
        let bd = wgs.to_system(Bd09);
        assert!(links
            .amap
            .starts_with("https://uri.amap.com/navigation?to="));
        assert!(links
            .amap
            .contains(&format!("to={:.6},{:.6},", gcj.longitude, gcj.latitude)));
        assert!(links.amap.contains("%E4%B8%96%E7%BA%AA")); // 世纪, percent-encoded
        assert!(links.baidu.contains(&format!(
            "destination=latlng:{:.6},{:.6}%7Cname:",
            bd.latitude, bd.longitude
        )));
        assert!(links.baidu.contains("coord_type=bd09ll"));
        assert!(links
            .tencent
            .contains(&format!("tocoord={:.6},{:.6}", gcj.latitude, gcj.longitude)));
        // Each link has exactly one query string and no raw spaces.
        for link in [&links.amap, &links.baidu, &links.tencent] {
            assert_eq!(link.matches('?').count(), 1);
            assert!(!link.contains(' '));
        }
    }
}
