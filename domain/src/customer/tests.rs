//! Given/when/then tests of the `Customer` aggregate.

use cqrs_es::Aggregate;
use std::collections::HashSet;

use chrono::{TimeDelta, TimeZone};
use cqrs_es::test::TestFramework;

use super::*;

type CustomerTester = TestFramework<Customer>;

const CUSTOMER_ID: Uuid = Uuid::from_u128(0x0c01);
const HOME: Uuid = Uuid::from_u128(0xad01);
const PARENTS: Uuid = Uuid::from_u128(0xad02);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0)
        .single()
        .expect("a valid instant")
}

fn later(minutes: i64) -> DateTime<Utc> {
    now() + TimeDelta::minutes(minutes)
}

/// A stand-in for a value the vault sealed; the domain never looks inside.
fn sealed(label: &str) -> Sealed {
    Sealed::from_ciphertext(format!("v1.{}.{label}", Uuid::nil()))
}

fn phone() -> Sealed {
    sealed("phone")
}

fn address() -> Address {
    Address {
        city: "北京市".to_owned(),
        district: "朝阳区".to_owned(),
        detail: sealed("detail"),
        contact_name: sealed("contact-name"),
        contact_phone: phone(),
        location: None,
    }
}

fn address_id(n: u128) -> Uuid {
    Uuid::from_u128(0xad00 + n)
}

// Commands ------------------------------------------------------------------------------------

fn register(name: &str, phone: Option<Sealed>) -> CustomerCommand {
    CustomerCommand::Register {
        customer_id: CUSTOMER_ID,
        name: sealed(name),
        phone,
        now: now(),
    }
}

fn rename(name: &str) -> CustomerCommand {
    CustomerCommand::Rename {
        name: sealed(name),
        now: later(10),
    }
}

fn add_address(address_id: Uuid, label: &str) -> CustomerCommand {
    CustomerCommand::AddAddress {
        address_id,
        label: label.to_owned(),
        address: address(),
        now: later(20),
    }
}

fn remove_address(address_id: Uuid) -> CustomerCommand {
    CustomerCommand::RemoveAddress {
        address_id,
        now: later(30),
    }
}

// Events --------------------------------------------------------------------------------------

fn registered() -> CustomerEvent {
    CustomerEvent::CustomerRegistered {
        customer_id: CUSTOMER_ID,
        name: sealed("张伟"),
        phone: Some(phone()),
        registered_at: now(),
    }
}

fn renamed(name: &str) -> CustomerEvent {
    CustomerEvent::CustomerRenamed {
        name: sealed(name),
        renamed_at: later(10),
    }
}

fn address_added(address_id: Uuid, label: &str) -> CustomerEvent {
    CustomerEvent::AddressAdded {
        address_id,
        label: label.to_owned(),
        address: address(),
        added_at: later(20),
    }
}

fn address_removed(address_id: Uuid) -> CustomerEvent {
    CustomerEvent::AddressRemoved {
        address_id,
        removed_at: later(30),
    }
}

fn fold(events: impl IntoIterator<Item = CustomerEvent>) -> Customer {
    let mut customer = Customer::default();
    for event in events {
        customer.apply(event);
    }
    customer
}

fn unregistered() -> cqrs_es::test::AggregateTestExecutor<Customer> {
    CustomerTester::with(()).given_no_previous_events()
}

fn given(events: Vec<CustomerEvent>) -> cqrs_es::test::AggregateTestExecutor<Customer> {
    CustomerTester::with(()).given(events)
}

/// A registered customer with `count` saved addresses, numbered from 1.
fn with_addresses(count: usize) -> Vec<CustomerEvent> {
    let mut events = vec![registered()];
    events.extend((1..=count as u128).map(|n| address_added(address_id(n), "地址")));
    events
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

#[test]
fn a_new_customer_registers_with_a_sealed_name_and_a_phone() {
    unregistered()
        .when(register("张伟", Some(phone())))
        .then_expect_events(vec![registered()]);
}

#[test]
fn a_customer_may_register_without_a_phone() {
    unregistered()
        .when(register("张伟", None))
        .then_expect_events(vec![CustomerEvent::CustomerRegistered {
            customer_id: CUSTOMER_ID,
            name: sealed("张伟"),
            phone: None,
            registered_at: now(),
        }]);
}

#[test]
fn registering_twice_is_refused() {
    given(vec![registered()])
        .when(register("张伟", Some(phone())))
        .then_expect_error(CustomerError::AlreadyRegistered);
}

#[test]
fn every_command_before_registration_is_not_found() {
    for command in [
        rename("张伟"),
        add_address(HOME, "家"),
        remove_address(HOME),
    ] {
        unregistered()
            .when(command)
            .then_expect_error(CustomerError::NotFound);
    }
}

// ---------------------------------------------------------------------------------------------
// Renaming
// ---------------------------------------------------------------------------------------------

#[test]
fn a_customer_can_rename_themselves() {
    given(vec![registered()])
        .when(rename("张伟伟"))
        .then_expect_events(vec![renamed("张伟伟")]);
}

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

#[test]
fn a_customer_can_save_an_address_under_a_trimmed_label() {
    given(vec![registered()])
        .when(add_address(HOME, " 家 "))
        .then_expect_events(vec![address_added(HOME, "家")]);
}

#[test]
fn saving_an_address_without_a_label_is_refused() {
    given(vec![registered()])
        .when(add_address(HOME, "  "))
        .then_expect_error(CustomerError::Invalid(ValueError::Empty {
            field: "地址标签 label",
        }));
}

#[test]
fn an_address_label_longer_than_twenty_characters_is_refused() {
    given(vec![registered()])
        .when(add_address(HOME, &"标".repeat(21)))
        .then_expect_error(CustomerError::Invalid(ValueError::TooLong {
            field: "地址标签 label",
            max: 20,
        }));
}

#[test]
fn saving_an_address_under_an_id_already_in_use_is_refused() {
    given(vec![registered(), address_added(HOME, "家")])
        .when(add_address(HOME, "新家"))
        .then_expect_error(CustomerError::AddressExists);
}

#[test]
fn a_second_address_is_saved_alongside_the_first() {
    given(vec![registered(), address_added(HOME, "家")])
        .when(add_address(PARENTS, "父母家"))
        .then_expect_events(vec![address_added(PARENTS, "父母家")]);
    let customer = fold(vec![
        registered(),
        address_added(HOME, "家"),
        address_added(PARENTS, "父母家"),
    ]);
    assert_eq!(customer.address_ids, vec![HOME, PARENTS]);
}

#[test]
fn up_to_max_addresses_can_be_saved() {
    let last = address_id(MAX_ADDRESSES as u128);
    given(with_addresses(MAX_ADDRESSES - 1))
        .when(add_address(last, "地址"))
        .then_expect_events(vec![address_added(last, "地址")]);
    assert_eq!(
        fold(with_addresses(MAX_ADDRESSES)).address_ids.len(),
        MAX_ADDRESSES
    );
}

#[test]
fn saving_more_than_max_addresses_is_refused() {
    given(with_addresses(MAX_ADDRESSES))
        .when(add_address(address_id(MAX_ADDRESSES as u128 + 1), "地址"))
        .then_expect_error(CustomerError::TooManyAddresses);
}

#[test]
fn removing_an_address_makes_room_for_another() {
    let mut history = with_addresses(MAX_ADDRESSES);
    history.push(address_removed(address_id(1)));
    let next = address_id(MAX_ADDRESSES as u128 + 1);
    given(history)
        .when(add_address(next, "地址"))
        .then_expect_events(vec![address_added(next, "地址")]);
}

#[test]
fn a_saved_address_can_be_removed() {
    given(vec![
        registered(),
        address_added(HOME, "家"),
        address_added(PARENTS, "父母家"),
    ])
    .when(remove_address(HOME))
    .then_expect_events(vec![address_removed(HOME)]);
    let customer = fold(vec![
        registered(),
        address_added(HOME, "家"),
        address_added(PARENTS, "父母家"),
        address_removed(HOME),
    ]);
    assert_eq!(customer.address_ids, vec![PARENTS]);
}

#[test]
fn removing_an_address_that_was_never_saved_is_refused() {
    given(vec![registered(), address_added(HOME, "家")])
        .when(remove_address(PARENTS))
        .then_expect_error(CustomerError::NoSuchAddress);
}

#[test]
fn removing_an_address_twice_is_refused() {
    given(vec![
        registered(),
        address_added(HOME, "家"),
        address_removed(HOME),
    ])
    .when(remove_address(HOME))
    .then_expect_error(CustomerError::NoSuchAddress);
}

#[test]
fn a_removed_address_id_can_be_saved_again() {
    given(vec![
        registered(),
        address_added(HOME, "家"),
        address_removed(HOME),
    ])
    .when(add_address(HOME, "家"))
    .then_expect_events(vec![address_added(HOME, "家")]);
}

// ---------------------------------------------------------------------------------------------
// Contact details and the emergency contact
// ---------------------------------------------------------------------------------------------

fn contact_changed() -> CustomerEvent {
    CustomerEvent::ContactDetailsChanged {
        phone: Some(phone()),
        email: Some(sealed("email")),
        changed_at: later(20),
    }
}

fn emergency_contact(relation: &str) -> EmergencyContact {
    EmergencyContact {
        name: sealed("emergency-name"),
        phone: sealed("emergency-phone"),
        relation: sealed(relation),
    }
}

fn emergency_contact_set(relation: &str) -> CustomerEvent {
    CustomerEvent::EmergencyContactSet {
        contact: emergency_contact(relation),
        set_at: later(30),
    }
}

#[test]
fn a_customer_changes_their_contact_details() {
    given(vec![registered()])
        .when(CustomerCommand::ChangeContact {
            phone: Some(phone()),
            email: Some(sealed("email")),
            now: later(20),
        })
        .then_expect_events(vec![contact_changed()]);
}

#[test]
fn an_emergency_contact_is_set_with_everything_sealed() {
    given(vec![registered()])
        .when(CustomerCommand::SetEmergencyContact {
            contact: emergency_contact("relation"),
            now: later(30),
        })
        .then_expect_events(vec![emergency_contact_set("relation")]);
}

#[test]
fn the_profile_form_renames_and_changes_contact_details_in_one_commit() {
    given(vec![registered()])
        .when(CustomerCommand::UpdateProfile {
            name: sealed("张伟伟"),
            phone: Some(phone()),
            email: Some(sealed("email")),
            now: later(20),
        })
        .then_expect_events(vec![
            CustomerEvent::CustomerRenamed {
                name: sealed("张伟伟"),
                renamed_at: later(20),
            },
            contact_changed(),
        ]);
}

#[test]
fn contact_changes_before_registration_are_not_found() {
    unregistered()
        .when(CustomerCommand::ChangeContact {
            phone: None,
            email: None,
            now: later(20),
        })
        .then_expect_error(CustomerError::NotFound);
}

// ---------------------------------------------------------------------------------------------
// Events on the wire
// ---------------------------------------------------------------------------------------------

fn one_of_every_event() -> Vec<CustomerEvent> {
    vec![
        registered(),
        renamed("张伟伟"),
        address_added(HOME, "家"),
        address_removed(HOME),
        contact_changed(),
        emergency_contact_set("配偶"),
        suspended_event(),
        CustomerEvent::CustomerReinstated {
            by: staff(),
            reason: "申诉成立 / appeal upheld".into(),
            at: later(50),
        },
        CustomerEvent::CustomerGroupsSet {
            by: staff(),
            groups: vec!["高价值客户".into()],
            at: later(60),
        },
        CustomerEvent::WorkerBlocked {
            worker_id: Uuid::from_u128(0xa1),
            at: later(70),
        },
        CustomerEvent::WorkerUnblocked {
            worker_id: Uuid::from_u128(0xa1),
            at: later(80),
        },
    ]
}

fn staff() -> crate::values::Actor {
    crate::values::Actor {
        id: Uuid::from_u128(0xad),
        role: crate::values::Role::Admin,
    }
}

fn suspended_event() -> CustomerEvent {
    CustomerEvent::CustomerSuspended {
        by: staff(),
        reason: "恶意下单 / abusive orders".into(),
        at: later(40),
    }
}

#[test]
fn an_admin_suspends_and_reinstates_a_customer_with_reasons() {
    given(vec![registered()])
        .when(CustomerCommand::Suspend {
            by: staff(),
            reason: " 恶意下单 / abusive orders ".into(),
            now: later(40),
        })
        .then_expect_events(vec![suspended_event()]);
    given(vec![registered(), suspended_event()])
        .when(CustomerCommand::Suspend {
            by: staff(),
            reason: "again".into(),
            now: later(41),
        })
        .then_expect_error(CustomerError::Suspended);
    given(vec![registered()])
        .when(CustomerCommand::Reinstate {
            by: staff(),
            reason: "ok".into(),
            now: later(41),
        })
        .then_expect_error(CustomerError::NotSuspended);
    given(vec![registered(), suspended_event()])
        .when(CustomerCommand::Reinstate {
            by: staff(),
            reason: " ".into(),
            now: later(41),
        })
        .then_expect_error(CustomerError::Invalid(ValueError::Empty {
            field: "原因 reason",
        }));
    assert!(fold(vec![registered(), suspended_event()]).suspended);
}

#[test]
fn customer_groups_are_cleaned_and_limited() {
    given(vec![registered()])
        .when(CustomerCommand::SetGroups {
            by: staff(),
            groups: vec![" 高价值客户 ".into(), "高价值客户".into()],
            now: later(60),
        })
        .then_expect_events(vec![CustomerEvent::CustomerGroupsSet {
            by: staff(),
            groups: vec!["高价值客户".into()],
            at: later(60),
        }]);
    given(vec![registered()])
        .when(CustomerCommand::SetGroups {
            by: staff(),
            groups: vec!["".into()],
            now: later(60),
        })
        .then_expect_error(CustomerError::BadGroups {
            max: crate::values::MAX_GROUPS,
        });
}

/// No catch-all arm: a new event kind fails to compile until it is added to the samples.
fn kind_index(event: &CustomerEvent) -> usize {
    match event {
        CustomerEvent::CustomerRegistered { .. } => 0,
        CustomerEvent::CustomerRenamed { .. } => 1,
        CustomerEvent::AddressAdded { .. } => 2,
        CustomerEvent::AddressRemoved { .. } => 3,
        CustomerEvent::ContactDetailsChanged { .. } => 4,
        CustomerEvent::EmergencyContactSet { .. } => 5,
        CustomerEvent::CustomerSuspended { .. } => 6,
        CustomerEvent::CustomerReinstated { .. } => 7,
        CustomerEvent::CustomerGroupsSet { .. } => 8,
        CustomerEvent::WorkerBlocked { .. } => 9,
        CustomerEvent::WorkerUnblocked { .. } => 10,
    }
}

#[test]
fn every_customer_event_survives_a_json_round_trip_under_a_distinct_type() {
    let events = one_of_every_event();
    let kinds: Vec<usize> = events.iter().map(kind_index).collect();
    assert_eq!(kinds, (0..11).collect::<Vec<_>>());
    let types: HashSet<String> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(types.len(), events.len());
    for event in events {
        let json = serde_json::to_string(&event).expect("serialises");
        let back: CustomerEvent = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, event, "{json}");
        assert_eq!(
            event.event_version(),
            crate::upcast::current_version(&event.event_type())
        );
    }
}
