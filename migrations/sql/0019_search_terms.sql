-- Search terms for the admins' searches over orders, customers and workers, Chinese included.
--
-- pg_trgm cannot help here: in the C-locale clusters the platform creates it treats every
-- Chinese character as a separator. Instead each read model keeps a generated `search_terms`
-- array under a GIN index, and a query matches when the row holds all of the query's terms:
-- - Latin words and numbers: every prefix (up to 20 characters) is a term, so `clean` finds
--   `cleaning` and `5678` finds the tail of `139****5678`;
-- - runs of other letters (Chinese): every character and every pair of neighbouring characters
--   is a term; a query's run is split into its pairs (or its one character), so 保洁 finds
--   日常保洁 and 深度保洁.
CREATE FUNCTION anjia_search_terms(source text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT coalesce(array_agg(DISTINCT term), '{}'::text[])
  FROM (SELECT left(word, n) AS term
          FROM regexp_split_to_table(lower(coalesce(source, '')), '[^a-z0-9]+') AS word,
               generate_series(1, least(length(word), 20)) AS n
         WHERE word <> ''
        UNION ALL
        SELECT substr(run, i, n)
          FROM regexp_split_to_table(lower(coalesce(source, '')), '[\x01-\x7F\u3000-\u303F\uFF00-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65\u00A0-\u00BF]+') AS run,
               generate_series(1, length(run)) AS i,
               generate_series(1, 2) AS n
         WHERE run <> '' AND i + n - 1 <= length(run)) AS terms
$$;

CREATE FUNCTION anjia_query_terms(query text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT coalesce(array_agg(DISTINCT term), '{}'::text[])
  FROM (SELECT left(word, 20) AS term
          FROM regexp_split_to_table(lower(coalesce(query, '')), '[^a-z0-9]+') AS word
         WHERE word <> ''
        UNION ALL
        SELECT CASE WHEN length(run) = 1 THEN run ELSE substr(run, i, 2) END
          FROM regexp_split_to_table(lower(coalesce(query, '')), '[\x01-\x7F\u3000-\u303F\uFF00-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65\u00A0-\u00BF]+') AS run,
               generate_series(1, greatest(length(run) - 1, 1)) AS i
         WHERE run <> '') AS terms
$$;
