//! Admission to an interview's call: the signaling service's room tokens and TURN credentials.

pub use signaling::token::{
    room_token, turn_credentials, verify_room_token, RoomClaims, TokenError,
};
