-- Each account's security settings; an account without a row has the defaults.
CREATE TABLE account_security
(
    user_id           uuid PRIMARY KEY REFERENCES credentials (user_id),
    sign_in_by_code   boolean     NOT NULL DEFAULT true,
    new_sign_in_alert boolean     NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
