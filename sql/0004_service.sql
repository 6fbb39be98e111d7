-- The service API (arbx serve): API keys (users' match decisions: 0002_labelled_pairs).

-- API keys: only the SHA-256 of each key is stored; a key is shown once, when issued.
CREATE TABLE IF NOT EXISTS api_keys (
    key_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ
);
