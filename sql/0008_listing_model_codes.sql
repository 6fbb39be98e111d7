-- Every model code found in a listing (its store's model field and its title), best
-- first, space-separated: normalisation finds them once, matching reads them instead of
-- extracting them again from a million titles.
ALTER TABLE listings ADD COLUMN IF NOT EXISTS model_codes TEXT;
