//! Parameters and bodies several routes share, so that route modules need not import each
//! other for them.

use domain::values::GeoPoint;
use domain::CoordinateSystem;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::text::Paragraph;
use domain::message::Text;

/// A reason, required (a cancellation, a dispute, a suspension...).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: Paragraph<500>,
}

/// A point from three optional query parameters: all or none.
pub fn optional_point(
    latitude: Option<f64>,
    longitude: Option<f64>,
    system: Option<CoordinateSystem>,
) -> Result<Option<GeoPoint>, ApiError> {
    match (latitude, longitude, system) {
        (Some(latitude), Some(longitude), Some(system)) => {
            Ok(Some(GeoPoint::new(latitude, longitude, system)?))
        }
        (None, None, None) => Ok(None),
        _ => Err(ApiError::Invalid(Text::new(
            "params.give-latitude-longitude-system-together",
        ))),
    }
}

/// The minutes between listed start times: 15 to 240, 30 when not given.
pub fn slot_step(step_minutes: Option<u32>) -> Result<u32, ApiError> {
    let step = step_minutes.unwrap_or(30);
    if !(15..=240).contains(&step) {
        return Err(ApiError::Invalid(Text::new(
            "params.step-minutes-must-15-240",
        )));
    }
    Ok(step)
}
