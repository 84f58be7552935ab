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
//!   Events written before held them in clear; an upcaster cannot seal (the log is append-only
//!   and the vault is not pure), so it marks them as [`Sealed::legacy_clear`], which the vault
//!   opens without a key.

use serde_json::Value;

use crate::values::Sealed;

/// The version an event type is written at today.
pub fn current_version(event_type: &str) -> &'static str {
    match event_type {
        "EmergencyContactSet"
        | "BankAccountSet"
        | "WithdrawalRequested"
        | "OrderPlaced"
        | "WorkerLocationReported" => "2.0",
        _ => crate::EVENT_VERSION,
    }
}

/// Brings a payload (`{"Variant": {…}}`) written at `version` to the current shape.
pub fn upcast(event_type: &str, version: &str, payload: Value) -> Result<Value, String> {
    if version == current_version(event_type) {
        return Ok(payload);
    }
    if (event_type, version) == ("WorkerLocationReported", "1.0") {
        return Ok(legacy_point(payload));
    }
    let path: &[&str] = match (event_type, version) {
        ("EmergencyContactSet", "1.0") => &["EmergencyContactSet", "contact", "relation"],
        ("BankAccountSet", "1.0") => &["BankAccountSet", "account", "holder_name"],
        ("WithdrawalRequested", "1.0") => &["WithdrawalRequested", "to", "holder_name"],
        ("OrderPlaced", "1.0") => &["OrderPlaced", "booking", "note"],
        _ => return Err(format!("no upcaster for {event_type} version {version}")),
    };
    Ok(mark_legacy_clear(payload, path))
}

/// A 1.0 location report's point in clear becomes a legacy-clear sealed point with its cell.
fn legacy_point(mut payload: Value) -> Value {
    let Some(location) = payload.pointer_mut("/WorkerLocationReported/location") else {
        return payload;
    };
    let Ok(point) = serde_json::from_value::<crate::values::GeoPoint>(location.clone()) else {
        return payload;
    };
    let sealed = Sealed::legacy_clear(&crate::values::SealedPoint::plaintext(&point));
    *location = serde_json::json!({"sealed": sealed.as_str(), "cell": point.coarse()});
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
}
