//! The `Customer` aggregate: a family's profile and its saved service addresses.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::message::{Explain, Text};
use crate::values::{required_text, Actor, Address, Sealed, ValueError};

/// The most addresses one customer keeps.
pub const MAX_ADDRESSES: usize = 20;

/// Whom to call if something happens during a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergencyContact {
    /// A `PersonName`, sealed under the customer's key.
    pub name: Sealed,
    /// Sealed under the customer's key.
    pub phone: Sealed,
    /// How they are related, e.g. 配偶 (spouse) or 女儿 (daughter), sealed under the
    /// customer's key (checked and trimmed before it is sealed).
    pub relation: Sealed,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    Register {
        customer_id: Uuid,
        /// A `PersonName`, sealed under the customer's key.
        name: Sealed,
        phone: Option<Sealed>,
        now: DateTime<Utc>,
    },
    Rename {
        name: Sealed,
        now: DateTime<Utc>,
    },
    AddAddress {
        address_id: Uuid,
        label: String,
        address: Address,
        now: DateTime<Utc>,
    },
    RemoveAddress {
        address_id: Uuid,
        now: DateTime<Utc>,
    },
    /// Replaces the contact phone number and e-mail address (each sealed, each optional).
    ChangeContact {
        phone: Option<Sealed>,
        email: Option<Sealed>,
        now: DateTime<Utc>,
    },
    SetEmergencyContact {
        contact: EmergencyContact,
        now: DateTime<Utc>,
    },
    /// An admin stops the customer from placing orders, saying why.
    Suspend {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    Reinstate {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    SetGroups {
        by: Actor,
        groups: Vec<String>,
        now: DateTime<Utc>,
    },
    /// The customer never wants this worker again: no offer, grab or assignment of their
    /// orders will go to them.
    BlockWorker {
        worker_id: Uuid,
        now: DateTime<Utc>,
    },
    UnblockWorker {
        worker_id: Uuid,
        now: DateTime<Utc>,
    },
    /// The profile form: name and contact details together, recorded at once.
    UpdateProfile {
        name: Sealed,
        phone: Option<Sealed>,
        email: Option<Sealed>,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerEvent {
    CustomerRegistered {
        customer_id: Uuid,
        name: Sealed,
        phone: Option<Sealed>,
        registered_at: DateTime<Utc>,
    },
    CustomerRenamed {
        name: Sealed,
        renamed_at: DateTime<Utc>,
    },
    AddressAdded {
        address_id: Uuid,
        label: String,
        address: Address,
        added_at: DateTime<Utc>,
    },
    AddressRemoved {
        address_id: Uuid,
        removed_at: DateTime<Utc>,
    },
    ContactDetailsChanged {
        phone: Option<Sealed>,
        email: Option<Sealed>,
        changed_at: DateTime<Utc>,
    },
    EmergencyContactSet {
        contact: EmergencyContact,
        set_at: DateTime<Utc>,
    },
    CustomerSuspended {
        by: Actor,
        reason: String,
        at: DateTime<Utc>,
    },
    CustomerReinstated {
        by: Actor,
        reason: String,
        at: DateTime<Utc>,
    },
    CustomerGroupsSet {
        by: Actor,
        groups: Vec<String>,
        at: DateTime<Utc>,
    },
    WorkerBlocked {
        worker_id: Uuid,
        at: DateTime<Utc>,
    },
    WorkerUnblocked {
        worker_id: Uuid,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        let name = match self {
            CustomerEvent::CustomerRegistered { .. } => "CustomerRegistered",
            CustomerEvent::CustomerRenamed { .. } => "CustomerRenamed",
            CustomerEvent::AddressAdded { .. } => "AddressAdded",
            CustomerEvent::AddressRemoved { .. } => "AddressRemoved",
            CustomerEvent::ContactDetailsChanged { .. } => "ContactDetailsChanged",
            CustomerEvent::EmergencyContactSet { .. } => "EmergencyContactSet",
            CustomerEvent::CustomerSuspended { .. } => "CustomerSuspended",
            CustomerEvent::CustomerReinstated { .. } => "CustomerReinstated",
            CustomerEvent::CustomerGroupsSet { .. } => "CustomerGroupsSet",
            CustomerEvent::WorkerBlocked { .. } => "WorkerBlocked",
            CustomerEvent::WorkerUnblocked { .. } => "WorkerUnblocked",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version(&self.event_type()).to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomerError {
    NotFound,
    AlreadyRegistered,
    NoSuchAddress,
    AddressExists,
    TooManyAddresses,
    Suspended,
    NotSuspended,
    BadGroups { max: usize },
    TooManyBlocked,
    Invalid(ValueError),
}

impl Explain for CustomerError {
    fn text(&self) -> Text {
        match self {
            CustomerError::NotFound => Text::new("customer.not-found"),
            CustomerError::AlreadyRegistered => Text::new("customer.already-registered"),
            CustomerError::NoSuchAddress => Text::new("customer.no-such-address"),
            CustomerError::AddressExists => Text::new("customer.address-exists"),
            CustomerError::TooManyAddresses => {
                Text::new("customer.too-many-addresses").with("MAX_ADDRESSES", MAX_ADDRESSES)
            }
            CustomerError::Suspended => Text::new("customer.suspended"),
            CustomerError::NotSuspended => Text::new("customer.not-suspended"),
            CustomerError::BadGroups { max } => Text::new("customer.bad-groups").with("max", max),
            CustomerError::TooManyBlocked => Text::new("customer.too-many-blocked")
                .with("MAX_BLOCKED_WORKERS", MAX_BLOCKED_WORKERS),
            CustomerError::Invalid(inner) => inner.text(),
        }
    }
}

crate::message::explained!(CustomerError);

impl From<ValueError> for CustomerError {
    fn from(error: ValueError) -> Self {
        CustomerError::Invalid(error)
    }
}

/// How many workers one customer may block.
pub const MAX_BLOCKED_WORKERS: usize = 100;

/// The state a customer's events fold into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub registered: bool,
    pub address_ids: Vec<Uuid>,
    pub suspended: bool,
    pub groups: Vec<String>,
    #[serde(default)]
    pub blocked_workers: Vec<Uuid>,
    /// The saved addresses as stored (personal parts sealed under the customer's key), so an
    /// order can name one by id.
    #[serde(default)]
    pub addresses: Vec<(Uuid, Address)>,
}

impl Customer {
    /// A saved address by id, as it was stored (sealed).
    pub fn saved_address(&self, address_id: Uuid) -> Option<&Address> {
        self.addresses
            .iter()
            .find(|(id, _)| *id == address_id)
            .map(|(_, address)| address)
    }
}

impl Customer {
    fn decide(&self, command: CustomerCommand) -> Result<Vec<CustomerEvent>, CustomerError> {
        match command {
            CustomerCommand::Register {
                customer_id,
                name,
                phone,
                now,
            } => {
                if self.registered {
                    return Err(CustomerError::AlreadyRegistered);
                }
                Ok(vec![CustomerEvent::CustomerRegistered {
                    customer_id,
                    name,
                    phone,
                    registered_at: now,
                }])
            }
            _ if !self.registered => Err(CustomerError::NotFound),
            CustomerCommand::Rename { name, now } => Ok(vec![CustomerEvent::CustomerRenamed {
                name,
                renamed_at: now,
            }]),
            CustomerCommand::AddAddress {
                address_id,
                label,
                address,
                now,
            } => {
                if self.address_ids.contains(&address_id) {
                    return Err(CustomerError::AddressExists);
                }
                if self.address_ids.len() >= MAX_ADDRESSES {
                    return Err(CustomerError::TooManyAddresses);
                }
                Ok(vec![CustomerEvent::AddressAdded {
                    address_id,
                    label: required_text("地址标签 label", &label, 20)?,
                    address,
                    added_at: now,
                }])
            }
            CustomerCommand::RemoveAddress { address_id, now } => {
                if !self.address_ids.contains(&address_id) {
                    return Err(CustomerError::NoSuchAddress);
                }
                Ok(vec![CustomerEvent::AddressRemoved {
                    address_id,
                    removed_at: now,
                }])
            }
            CustomerCommand::ChangeContact { phone, email, now } => {
                Ok(vec![CustomerEvent::ContactDetailsChanged {
                    phone,
                    email,
                    changed_at: now,
                }])
            }
            CustomerCommand::UpdateProfile {
                name,
                phone,
                email,
                now,
            } => Ok(vec![
                CustomerEvent::CustomerRenamed {
                    name,
                    renamed_at: now,
                },
                CustomerEvent::ContactDetailsChanged {
                    phone,
                    email,
                    changed_at: now,
                },
            ]),
            CustomerCommand::Suspend { by, reason, now } => {
                if self.suspended {
                    return Err(CustomerError::Suspended);
                }
                Ok(vec![CustomerEvent::CustomerSuspended {
                    by,
                    reason: required_text("原因 reason", &reason, 500)?,
                    at: now,
                }])
            }
            CustomerCommand::Reinstate { by, reason, now } => {
                if !self.suspended {
                    return Err(CustomerError::NotSuspended);
                }
                Ok(vec![CustomerEvent::CustomerReinstated {
                    by,
                    reason: required_text("原因 reason", &reason, 500)?,
                    at: now,
                }])
            }
            CustomerCommand::SetGroups { by, groups, now } => {
                Ok(vec![CustomerEvent::CustomerGroupsSet {
                    by,
                    groups: crate::values::group_names(&groups).ok_or(
                        CustomerError::BadGroups {
                            max: crate::values::MAX_GROUPS,
                        },
                    )?,
                    at: now,
                }])
            }
            CustomerCommand::BlockWorker { worker_id, now } => {
                Ok(if self.blocked_workers.contains(&worker_id) {
                    vec![]
                } else if self.blocked_workers.len() >= MAX_BLOCKED_WORKERS {
                    return Err(CustomerError::TooManyBlocked);
                } else {
                    vec![CustomerEvent::WorkerBlocked { worker_id, at: now }]
                })
            }
            CustomerCommand::UnblockWorker { worker_id, now } => {
                Ok(if self.blocked_workers.contains(&worker_id) {
                    vec![CustomerEvent::WorkerUnblocked { worker_id, at: now }]
                } else {
                    vec![]
                })
            }
            CustomerCommand::SetEmergencyContact { contact, now } => {
                Ok(vec![CustomerEvent::EmergencyContactSet {
                    contact,
                    set_at: now,
                }])
            }
        }
    }
}

crate::aggregate!(
    Customer,
    "customer",
    CustomerCommand,
    CustomerEvent,
    CustomerError
);

impl Customer {
    /// Folds one event into the state: the aggregate's `apply`.
    fn fold(&mut self, event: CustomerEvent) {
        match event {
            CustomerEvent::CustomerRegistered { .. } => self.registered = true,
            CustomerEvent::CustomerRenamed { .. }
            | CustomerEvent::ContactDetailsChanged { .. }
            | CustomerEvent::EmergencyContactSet { .. } => {}
            CustomerEvent::CustomerSuspended { .. } => self.suspended = true,
            CustomerEvent::CustomerReinstated { .. } => self.suspended = false,
            CustomerEvent::CustomerGroupsSet { groups, .. } => self.groups = groups,
            CustomerEvent::AddressAdded {
                address_id,
                address,
                ..
            } => {
                self.address_ids.push(address_id);
                self.addresses.push((address_id, address));
            }
            CustomerEvent::WorkerBlocked { worker_id, .. } => self.blocked_workers.push(worker_id),
            CustomerEvent::WorkerUnblocked { worker_id, .. } => {
                self.blocked_workers.retain(|blocked| *blocked != worker_id)
            }
            CustomerEvent::AddressRemoved { address_id, .. } => {
                self.address_ids.retain(|existing| *existing != address_id);
                self.addresses
                    .retain(|(existing, _)| *existing != address_id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
