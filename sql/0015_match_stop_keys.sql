-- Incremental matching (domain/matching/retrieval.py): the title and model-code keys held
-- by too many listings to name a product, recorded by each full match, so a changed
-- listing's candidates are searched without reading every title of the catalogue.
CREATE TABLE IF NOT EXISTS match_stop_keys (
    key BIGINT NOT NULL PRIMARY KEY
);
