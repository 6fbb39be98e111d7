-- What the alert dispatcher remembers (dedup claims, cooldowns, what was last alerted per
-- opportunity and watch rule) when no Redis is configured, so that "once", cooldowns and
-- "again only if materially better" hold across runs and processes
-- (storage/alerts_store.py). Keys expire at expires_at (NULL: never).
CREATE TABLE IF NOT EXISTS alert_memory (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);
