-- request_key_sql("request_id")
CAST(conv(substr(md5(CAST("request_id" AS STRING)), 1, 8), 16, 10) AS BIGINT)

-- group_sql("request_key")
CAST(pmod("request_key", CAST(? AS BIGINT)) AS INT)

-- sample_key_sql("request_key")
CAST(shiftright("request_key", 8) AS INT)

-- rows_sql(rate:prediction=approved, region=eu, channel in (app, web))
SELECT ? AS period, resolved_version AS version, CASE WHEN "prediction" IS NULL THEN NULL WHEN CAST("prediction" AS STRING) = ? THEN 1.0 ELSE 0.0 END AS y, CAST(pmod("request_key", CAST(? AS BIGINT)) AS INT) AS grp, CAST(shiftright("request_key", 8) AS INT) AS model_sample, "amount" FROM predictions_resolved WHERE ("ts" >= ? AND "ts" < ?) AND "prediction" IS NOT NULL AND coalesce("component", 'online') <> 'shadow' AND CAST("region" AS STRING) = ? AND CAST("channel" AS STRING) IN (?, ?)
UNION ALL
SELECT ? AS period, resolved_version AS version, CASE WHEN "prediction" IS NULL THEN NULL WHEN CAST("prediction" AS STRING) = ? THEN 1.0 ELSE 0.0 END AS y, CAST(pmod("request_key", CAST(? AS BIGINT)) AS INT) AS grp, CAST(shiftright("request_key", 8) AS INT) AS model_sample, "amount" FROM predictions_resolved WHERE ("ts" >= ? AND "ts" < ?) AND "prediction" IS NOT NULL AND coalesce("component", 'online') <> 'shadow' AND CAST("region" AS STRING) = ? AND CAST("channel" AS STRING) IN (?, ?)
-- params: [0, 'approved', 64, datetime.datetime(2026, 11, 2, 0, 0), datetime.datetime(2026, 11, 9, 0, 0), 'eu', 'app', 'web', 1, 'approved', 64, datetime.datetime(2026, 11, 9, 0, 0), datetime.datetime(2026, 11, 16, 0, 0), 'eu', 'app', 'web']
