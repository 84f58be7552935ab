//! The events whose stored shape changed, and how a payload written at an older version is
//! brought to today's. Every reader of the log goes through [`upcast`]: the command side
//! through cqrs-es ([`Upcaster`]), and the projectors, the warehouse and the audit trail
//! through `projections::log::StoredEvent::decode`, so each event type has one shape in code.
//!
//! - 2.0 of `EmergencyContactSet`, `BankAccountSet`, `WithdrawalRequested` and `OrderPlaced`:
//!   the emergency contact's relation, the bank account holder's name and the order's note are
//!   sealed under the person's key.
//! - 2.0 of `WorkerLocationReported`: the worker's position is a `SealedPoint` (sealed under
//!   the worker's key, with its public cell).
//! - 3.0 of `OrderPlaced`, 2.0 of `AddressChanged` and `AddressAdded`: the address's
//!   coordinates are a `SealedPoint` under the customer's key.
//! - 2.0 of `ServiceBaseSet`: the base's point is sealed under the worker's key and the event
//!   keeps its cell; 2.0 of `WorkerBooked`: a booking keeps only its address's cell.
//!   Events written before held them in clear; an upcaster cannot seal (the log is append-only
//!   and the vault is not pure), so it marks them as [`Sealed::legacy_clear`], which the vault
//!   opens without a key. A payload is brought up one version at a time.

use serde_json::Value;

use crate::values::{GeoPoint, Sealed, SealedPoint};

/// The version an event type is written at today.
pub fn current_version(event_type: &str) -> &'static str {
    match event_type {
        "OrderPlaced" => "3.0",
        "EmergencyContactSet"
        | "BankAccountSet"
        | "WithdrawalRequested"
        | "WorkerLocationReported"
        | "AddressChanged"
        | "AddressAdded"
        | "ServiceBaseSet"
        | "WorkerBooked" => "2.0",
        _ => crate::EVENT_VERSION,
    }
}

/// Brings a payload (`{"Variant": {…}}`) written at `version` to the current shape.
pub fn upcast(event_type: &str, version: &str, mut payload: Value) -> Result<Value, String> {
    let mut version = version;
    while version != current_version(event_type) {
        (payload, version) = step(event_type, version, payload)?;
    }
    Ok(payload)
}

/// One version up.
fn step(event_type: &str, version: &str, payload: Value) -> Result<(Value, &'static str), String> {
    let text_path: &[&str] = match (event_type, version) {
        ("WorkerLocationReported", "1.0") => {
            return Ok((
                sealed_point(payload, "/WorkerLocationReported/location"),
                "2.0",
            ))
        }
        ("OrderPlaced", "2.0") => {
            return Ok((
                sealed_point(payload, "/OrderPlaced/booking/address/location"),
                "3.0",
            ))
        }
        ("AddressChanged", "1.0") => {
            return Ok((
                sealed_point(payload, "/AddressChanged/address/location"),
                "2.0",
            ))
        }
        ("AddressAdded", "1.0") => {
            return Ok((
                sealed_point(payload, "/AddressAdded/address/location"),
                "2.0",
            ))
        }
        ("ServiceBaseSet", "1.0") => return Ok((sealed_base(payload), "2.0")),
        ("WorkerBooked", "1.0") => {
            return Ok((coarsened(payload, "/WorkerBooked/location"), "2.0"))
        }
        ("EmergencyContactSet", "1.0") => &["EmergencyContactSet", "contact", "relation"],
        ("BankAccountSet", "1.0") => &["BankAccountSet", "account", "holder_name"],
        ("WithdrawalRequested", "1.0") => &["WithdrawalRequested", "to", "holder_name"],
        ("OrderPlaced", "1.0") => &["OrderPlaced", "booking", "note"],
        _ => return Err(format!("no upcaster for {event_type} version {version}")),
    };
    Ok((mark_legacy_clear(payload, text_path), "2.0"))
}

/// The point in clear at `pointer` (if there is one) becomes a legacy-clear sealed point with
/// its cell.
fn sealed_point(mut payload: Value, pointer: &str) -> Value {
    let Some(location) = payload.pointer_mut(pointer) else {
        return payload;
    };
    let Ok(point) = serde_json::from_value::<GeoPoint>(location.clone()) else {
        return payload;
    };
    let sealed = SealedPoint::new(
        &point,
        Sealed::legacy_clear(&SealedPoint::plaintext(&point)),
    );
    *location = serde_json::to_value(sealed).expect("a sealed point serialises");
    payload
}

/// The point in clear at `pointer` (if there is one) is replaced by its cell.
fn coarsened(mut payload: Value, pointer: &str) -> Value {
    if let Some(location) = payload.pointer_mut(pointer) {
        if let Ok(point) = serde_json::from_value::<GeoPoint>(location.clone()) {
            *location = serde_json::to_value(point.coarse()).expect("a point serialises");
        }
    }
    payload
}

/// A 1.0 base's point in clear moves to `sealed` (legacy-clear) and the base keeps its cell.
fn sealed_base(payload: Value) -> Value {
    let point = payload
        .pointer("/ServiceBaseSet/base/location")
        .and_then(|location| serde_json::from_value::<GeoPoint>(location.clone()).ok());
    let Some(point) = point else {
        return payload;
    };
    let mut payload = coarsened(payload, "/ServiceBaseSet/base/location");
    if let Some(event) = payload
        .pointer_mut("/ServiceBaseSet")
        .and_then(Value::as_object_mut)
    {
        let sealed = Sealed::legacy_clear(&SealedPoint::plaintext(&point));
        event.insert("sealed".into(), Value::String(sealed.as_str().to_owned()));
    }
    payload
}

/// Replaces the text at `path` (if there is one) by its legacy-clear form.
fn mark_legacy_clear(mut payload: Value, path: &[&str]) -> Value {
    let mut at = &mut payload;
    for step in path {
        match at.get_mut(*step) {
            Some(next) => at = next,
            None => return payload,
        }
    }
    if let Value::String(text) = at {
        *at = Value::String(Sealed::legacy_clear(text).as_str().to_owned());
    }
    payload
}

/// The upcasters as cqrs-es's event store takes them.
pub struct Upcaster;

impl cqrs_es::persist::EventUpcaster for Upcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_version != current_version(event_type)
    }

    fn upcast(
        &self,
        mut event: cqrs_es::persist::SerializedEvent,
    ) -> cqrs_es::persist::SerializedEvent {
        // An event no upcaster knows is left as it is: decoding it then fails and says so.
        if let Ok(payload) = upcast(
            &event.event_type,
            &event.event_version,
            event.payload.clone(),
        ) {
            event.payload = payload;
            event.event_version = current_version(&event.event_type).to_owned();
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_relation_and_a_holder_name_written_in_clear_read_as_legacy_clear_values() {
        let old = json!({"EmergencyContactSet": {"contact": {"name": "v1.x.y", "phone": "v1.x.z", "relation": "配偶"}, "set_at": "2026-01-01T00:00:00Z"}});
        let new = upcast("EmergencyContactSet", "1.0", old).expect("upcast");
        let relation = Sealed::from_ciphertext(
            new["EmergencyContactSet"]["contact"]["relation"]
                .as_str()
                .expect("text")
                .to_owned(),
        );
        assert_eq!(relation.legacy_text().as_deref(), Some("配偶"));
        let withdrawal = json!({"WithdrawalRequested": {"withdrawal_id": "x", "amount": 100, "requested_at": "t"}});
        assert_eq!(
            upcast("WithdrawalRequested", "1.0", withdrawal.clone()),
            Ok(withdrawal),
            "nothing to mark"
        );
        assert!(upcast("BankAccountSet", "0.9", json!({})).is_err());
        assert_eq!(
            upcast("OrderAccepted", "1.0", json!({"a": 1})),
            Ok(json!({"a": 1}))
        );
        let reported = json!({"WorkerLocationReported": {"location": {"latitude": 31.23456, "longitude": 121.47512, "system": "gcj02"}}});
        let upcast_report = upcast("WorkerLocationReported", "1.0", reported).expect("upcast");
        let location = &upcast_report["WorkerLocationReported"]["location"];
        assert_eq!(
            location["cell"],
            json!({"latitude": 31.23, "longitude": 121.48, "system": "gcj02"})
        );
        let sealed =
            Sealed::from_ciphertext(location["sealed"].as_str().expect("sealed").to_owned());
        let point = crate::values::SealedPoint::parse(&sealed.legacy_text().expect("legacy"));
        assert_eq!(point.map(|point| point.latitude), Some(31.23456));
        let placed = json!({"OrderPlaced": {"booking": {"note": null}}});
        assert_eq!(upcast("OrderPlaced", "1.0", placed.clone()), Ok(placed));
    }

    fn opened(sealed: &Value) -> Option<GeoPoint> {
        let sealed = Sealed::from_ciphertext(sealed.as_str()?.to_owned());
        SealedPoint::parse(&sealed.legacy_text()?)
    }

    #[test]
    fn home_coordinates_and_bases_in_clear_read_as_sealed_points_with_their_cells() {
        let point = json!({"latitude": 31.23456, "longitude": 121.47512, "system": "gcj02"});
        let cell = json!({"latitude": 31.23, "longitude": 121.48, "system": "gcj02"});
        // 1.0 goes through 2.0 (the note) to 3.0 (the coordinates) in one call.
        let placed = json!({"OrderPlaced": {"booking": {"note": "门铃坏了", "address": {"city": "上海市", "location": point}}}});
        let placed = upcast("OrderPlaced", "1.0", placed).expect("upcast");
        let booking = &placed["OrderPlaced"]["booking"];
        assert_eq!(
            Sealed::from_ciphertext(booking["note"].as_str().expect("note").to_owned())
                .legacy_text()
                .as_deref(),
            Some("门铃坏了")
        );
        assert_eq!(booking["address"]["location"]["cell"], cell);
        let home = opened(&booking["address"]["location"]["sealed"]).expect("opens");
        assert_eq!(home.latitude, 31.23456);
        for event_type in ["AddressChanged", "AddressAdded"] {
            let old = json!({event_type: {"address": {"location": point}}});
            let new = upcast(event_type, "1.0", old).expect("upcast");
            assert_eq!(new[event_type]["address"]["location"]["cell"], cell);
            let nowhere = json!({event_type: {"address": {"location": null}}});
            assert_eq!(upcast(event_type, "1.0", nowhere.clone()), Ok(nowhere));
        }
        let base =
            json!({"ServiceBaseSet": {"base": {"location": point, "radius_km": 10}, "at": "t"}});
        let base = upcast("ServiceBaseSet", "1.0", base).expect("upcast");
        assert_eq!(base["ServiceBaseSet"]["base"]["location"], cell);
        assert_eq!(base["ServiceBaseSet"]["base"]["radius_km"], 10);
        let home = opened(&base["ServiceBaseSet"]["sealed"]).expect("opens");
        assert_eq!(home.longitude, 121.47512);
        let booked = json!({"WorkerBooked": {"location": point}});
        let booked = upcast("WorkerBooked", "1.0", booked).expect("upcast");
        assert_eq!(booked["WorkerBooked"]["location"], cell);
    }
}
