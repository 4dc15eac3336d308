-- _EPOCHS_SQL
CREATE OR REPLACE TEMP TABLE _vdrift_audit_epochs AS
WITH b AS (
  SELECT DISTINCT date_trunc(?, piece_start) AS bucket_start, piece_start AS e_start
  FROM _vdrift_audit_piece
  WHERE piece_start > ? AND piece_start < ? AND date_trunc(?, piece_start) <> piece_start
),
e AS (
  SELECT bucket_start, e_start FROM b
  UNION
  SELECT bucket_start, bucket_start AS e_start FROM b
)
SELECT bucket_start, e_start,
       lead(e_start) OVER (PARTITION BY bucket_start ORDER BY e_start) AS e_end  -- NULL: to the bucket's end
FROM e

-- _PRE_SQL (duckdb)
CREATE OR REPLACE TEMP TABLE _vdrift_audit_precells AS
WITH g AS (
  SELECT date_trunc(?, p.ts) AS bucket_start,
         coalesce(ep.e_start, date_trunc(?, p.ts)) AS epoch,
         p.component, p.region, p.instance_id, p.artifact_hash, p.model_version, p.feature_version,
         (p.component = 'cache' OR coalesce(p.cache_hit, false)) AS is_cache,
         count(*) AS n, min(p.ts) AS first_ts, max(p.ts) AS last_ts,
         min({'ts': p.ts, 'id': p.request_id}, ?) AS examples
  FROM predictions AS p
  LEFT JOIN _vdrift_audit_epochs AS ep
    ON ep.bucket_start = date_trunc(?, p.ts) AND p.ts >= ep.e_start AND (ep.e_end IS NULL OR p.ts < ep.e_end)
  WHERE p.ts >= ? AND p.ts < ?
  GROUP BY ALL)
SELECT g.bucket_start, g.epoch, g.component, g.region, g.instance_id, g.model_version,
       CASE
         WHEN g.artifact_hash IS NULL THEN g.model_version
         WHEN a.version IS NOT NULL THEN a.version
         ELSE 'unregistered:' || left(g.artifact_hash, 12)
       END AS resolved_version,
       CASE
         WHEN g.artifact_hash IS NULL THEN 'unverified'
         WHEN a.version IS NULL THEN 'unregistered'
         WHEN a.version = g.model_version THEN 'verified'
         ELSE 'mismatch'
       END AS version_status,
       a.feature_version AS expected_feature_version,
       g.feature_version, g.is_cache, g.n, g.first_ts, g.last_ts, g.examples
FROM g
LEFT JOIN (SELECT artifact_hash, min(version) AS version,
                  min(feature_version) AS feature_version
           FROM artifacts GROUP BY artifact_hash) AS a
  ON g.artifact_hash = a.artifact_hash

-- _groups_sql (duckdb, the epoch as a CASE over two boundaries)
SELECT date_trunc(?, p.ts) AS bucket_start,
         CASE WHEN p.ts >= ? THEN greatest(date_trunc(?, p.ts), ?) WHEN p.ts >= ? THEN greatest(date_trunc(?, p.ts), ?) ELSE date_trunc(?, p.ts) END AS epoch,
         p.component, p.region, p.instance_id, p.artifact_hash, p.model_version, p.feature_version,
         (p.component = 'cache' OR coalesce(p.cache_hit, false)) AS is_cache,
         count(*) AS n, min(p.ts) AS first_ts, max(p.ts) AS last_ts,
         min({'ts': p.ts, 'id': p.request_id}, ?) AS examples
  FROM predictions AS p
  WHERE p.ts >= ? AND p.ts < ?
  GROUP BY ALL

-- _groups_sql (spark)
WITH base AS (SELECT /*+ BROADCAST(ep) */ date_trunc(?, p.ts) AS bucket_start,
         coalesce(ep.e_start, date_trunc(?, p.ts)) AS epoch,
         p.component, p.region, p.instance_id, p.artifact_hash, p.model_version, p.feature_version,
         (p.component = 'cache' OR coalesce(p.cache_hit, false)) AS is_cache, CAST(p.ts AS TIMESTAMP_NTZ) AS ts, p.request_id
                FROM predictions AS p
  LEFT JOIN _vdrift_audit_epochs AS ep
    ON ep.bucket_start = date_trunc(?, p.ts) AND p.ts >= ep.e_start AND (ep.e_end IS NULL OR p.ts < ep.e_end)
  WHERE p.ts >= ? AND p.ts < ?),
  agg AS (SELECT bucket_start, epoch, component, region, instance_id, artifact_hash, model_version, feature_version, is_cache, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts FROM base GROUP BY bucket_start, epoch, component, region, instance_id, artifact_hash, model_version, feature_version, is_cache),
  ex AS (SELECT bucket_start, epoch, component, region, instance_id, artifact_hash, model_version, feature_version, is_cache, sort_array(collect_list(named_struct('ts', ts, 'id', request_id))) AS examples
         FROM (SELECT base.*, row_number() OVER (PARTITION BY bucket_start, epoch, component, region, instance_id, artifact_hash, model_version, feature_version, is_cache ORDER BY ts, request_id) AS rk FROM base) AS r
         WHERE rk <= ?
         GROUP BY bucket_start, epoch, component, region, instance_id, artifact_hash, model_version, feature_version, is_cache)
  SELECT a.*, x.examples FROM agg AS a JOIN ex AS x ON a.bucket_start <=> x.bucket_start AND a.epoch <=> x.epoch AND a.component <=> x.component AND a.region <=> x.region AND a.instance_id <=> x.instance_id AND a.artifact_hash <=> x.artifact_hash AND a.model_version <=> x.model_version AND a.feature_version <=> x.feature_version AND a.is_cache <=> x.is_cache

-- _CELLS_SQL
CREATE OR REPLACE TEMP TABLE _vdrift_audit_cells AS
WITH r AS (
  SELECT pre.*,
         CASE WHEN pre.component = 'shadow' THEN NULL
              WHEN pre.is_cache THEN ?
              WHEN pre.component = 'online' THEN 'serving'
              WHEN pre.component = 'batch' THEN ? END AS gov
  FROM _vdrift_audit_precells AS pre
),
r2 AS (
  SELECT r.*, coalesce(st.eff_scope, 'all') AS eff_scope, coalesce(fst.eff_scope, 'all') AS fp_scope
  FROM r
  LEFT JOIN _vdrift_audit_streams AS st ON st.component = r.gov AND st.eff_scope = r.region
  LEFT JOIN _vdrift_audit_streams AS fst ON fst.component = 'feature_pipeline' AND fst.eff_scope = r.region
),
r3 AS (
  SELECT r2.*, pc.piece_id, pc.pos, pc.overdue
  FROM r2 ASOF LEFT JOIN _vdrift_audit_piece AS pc
    ON pc.component = r2.gov AND pc.eff_scope = r2.eff_scope AND r2.first_ts >= pc.piece_start
),
r4 AS (
  SELECT r3.*, fp.pos AS fp_pos
  FROM r3 ASOF LEFT JOIN _vdrift_audit_piece AS fp
    ON fp.component = 'feature_pipeline' AND fp.eff_scope = r3.fp_scope AND r3.first_ts >= fp.piece_start
),
c AS (
  SELECT bucket_start, component, region, instance_id,
         resolved_version, model_version, version_status, feature_version,
         expected_feature_version, is_cache,
         gov, eff_scope, piece_id, pos, overdue, fp_scope, fp_pos,
         sum(n)::BIGINT AS n, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
         list_transform(list_sort(flatten(list(examples)))[1:?], e -> e.id) AS examples
  FROM r4
  GROUP BY ALL
)
SELECT c.*,
       c.pos IS NOT NULL AS governed,
       iv.version IS NOT NULL AS in_intent,
       CASE WHEN c.fp_pos IS NULL OR c.feature_version IS NULL THEN NULL
            ELSE fiv.version IS NOT NULL END AS fp_in_intent
FROM c
LEFT JOIN _vdrift_audit_iv AS iv
  ON iv.component = c.gov AND iv.eff_scope = c.eff_scope AND iv.pos = c.pos
 AND iv.version = c.resolved_version
LEFT JOIN _vdrift_audit_iv AS fiv
  ON fiv.component = 'feature_pipeline' AND fiv.eff_scope = c.fp_scope AND fiv.pos = c.fp_pos
 AND fiv.version = c.feature_version

-- _CENSUS_SQL
WITH g AS (
  SELECT bucket_start, resolved_version, model_version, version_status, component, region,
         instance_id, sum(n)::BIGINT AS n
  FROM _vdrift_audit_cells
  GROUP BY bucket_start, resolved_version, model_version, version_status, component, region, instance_id
)
SELECT *, n / sum(n) OVER (PARTITION BY bucket_start, component) AS share
FROM g
ORDER BY bucket_start, component, region NULLS FIRST, instance_id NULLS FIRST, n DESC, resolved_version,
         model_version, version_status
