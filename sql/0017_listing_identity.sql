-- Incremental matching: each listing carries the hash of what the matcher reads of it
-- (domain/matching/incremental.py `listing_identities`), written with the listing by
-- normalisation, so the listings changed since the last match are found in the database
-- (against match_identities) instead of by reading and hashing every listing. Null until
-- a listing is normalised again or a full match fills it in.
ALTER TABLE listings ADD COLUMN IF NOT EXISTS identity BIGINT;
