-- md5_group_sql("request_id")
CAST(pmod(CAST(conv(substr(md5(CAST("request_id" AS STRING)), 1, 8), 16, 10) AS BIGINT), CAST(? AS BIGINT)) AS INT)

-- model_hash_sql("entity_id")
CAST(pmod(CAST(conv(substr(md5(CAST((CAST("entity_id" AS STRING) || 'vdrift-model') AS STRING)), 1, 8), 16, 10) AS BIGINT), CAST(? AS BIGINT)) AS INT)

-- rows_sql(rate:prediction=approved, region=eu, channel in (app, web))
SELECT ? AS period, resolved_version AS version, CASE WHEN "prediction" IS NULL THEN NULL WHEN CAST("prediction" AS STRING) = ? THEN 1.0 ELSE 0.0 END AS y, CAST(pmod(CAST(conv(substr(md5(CAST("request_id" AS STRING)), 1, 8), 16, 10) AS BIGINT), CAST(? AS BIGINT)) AS INT) AS grp, CAST(pmod(CAST(conv(substr(md5(CAST((CAST("entity_id" AS STRING) || 'vdrift-model') AS STRING)), 1, 8), 16, 10) AS BIGINT), CAST(? AS BIGINT)) AS INT) AS model_sample, "amount" FROM predictions_resolved WHERE ("ts" >= ? AND "ts" < ?) AND "prediction" IS NOT NULL AND coalesce("component", 'online') <> 'shadow' AND CAST("region" AS STRING) = ? AND CAST("channel" AS STRING) IN (?, ?)
UNION ALL
SELECT ? AS period, resolved_version AS version, CASE WHEN "prediction" IS NULL THEN NULL WHEN CAST("prediction" AS STRING) = ? THEN 1.0 ELSE 0.0 END AS y, CAST(pmod(CAST(conv(substr(md5(CAST("request_id" AS STRING)), 1, 8), 16, 10) AS BIGINT), CAST(? AS BIGINT)) AS INT) AS grp, CAST(pmod(CAST(conv(substr(md5(CAST((CAST("entity_id" AS STRING) || 'vdrift-model') AS STRING)), 1, 8), 16, 10) AS BIGINT), CAST(? AS BIGINT)) AS INT) AS model_sample, "amount" FROM predictions_resolved WHERE ("ts" >= ? AND "ts" < ?) AND "prediction" IS NOT NULL AND coalesce("component", 'online') <> 'shadow' AND CAST("region" AS STRING) = ? AND CAST("channel" AS STRING) IN (?, ?)
-- params: [0, 'approved', 64, 5, datetime.datetime(2026, 11, 2, 0, 0), datetime.datetime(2026, 11, 9, 0, 0), 'eu', 'app', 'web', 1, 'approved', 64, 5, datetime.datetime(2026, 11, 9, 0, 0), datetime.datetime(2026, 11, 16, 0, 0), 'eu', 'app', 'web']
