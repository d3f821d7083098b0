-- Password reset and address verification by email, and accounts an operator disabled. Like refresh tokens and invites, the token itself is never
-- stored: only its SHA-256, so a leaked database cannot be used to take over accounts.
-- The same file runs on SQLite and PostgreSQL (see 0001 for the shared types).

create table password_resets (
    token_hash text primary key,
    user_id text not null references users (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    -- set when the token is redeemed, or when another token of the same account is: a
    -- token works once, and a reset makes every older link of the account worthless
    used_at bigint
);
create index password_resets_by_user on password_resets (user_id);

-- Set by `confab-server admin disable-user`: the account cannot sign in or refresh, and
-- gets no reset mail, until `enable-user` clears it. Its rows stay (messages, rooms).
alter table users add column disabled_at bigint;

-- Set at sign-up while --require-email-verification is on: the account cannot sign in
-- until its owner opens the link mailed to them (or resets the password by email, which
-- proves the same). Accounts made before, or by an operator, never have it set.
alter table users add column email_unverified_at bigint;

-- The links that confirm an address; like reset tokens, stored as their SHA-256.
create table email_verifications (
    token_hash text primary key,
    user_id text not null references users (id) on delete cascade,
    created_at bigint not null,
    expires_at bigint not null,
    used_at bigint
);
create index email_verifications_by_user on email_verifications (user_id);
