-- request_key_sql("request_id")
CAST(CAST(('0x' || substr(md5(CAST("request_id" AS VARCHAR)), 1, 8)) AS UBIGINT) AS UINTEGER)

-- group_sql("request_key")
CAST("request_key" % CAST(? AS UBIGINT) AS INTEGER)

-- sample_key_sql("request_key")
CAST("request_key" >> 8 AS INTEGER)

-- rows_sql(rate:prediction=approved, region=eu, channel in (app, web))
SELECT ? AS period, resolved_version AS version, CASE WHEN "prediction" IS NULL THEN NULL WHEN CAST("prediction" AS VARCHAR) = ? THEN 1.0 ELSE 0.0 END AS y, CAST("request_key" % CAST(? AS UBIGINT) AS INTEGER) AS grp, CAST("request_key" >> 8 AS INTEGER) AS model_sample, "amount" FROM predictions_resolved WHERE ("ts" >= ? AND "ts" < ?) AND "prediction" IS NOT NULL AND coalesce("component", 'online') <> 'shadow' AND CAST("region" AS VARCHAR) = ? AND CAST("channel" AS VARCHAR) IN (?, ?)
UNION ALL
SELECT ? AS period, resolved_version AS version, CASE WHEN "prediction" IS NULL THEN NULL WHEN CAST("prediction" AS VARCHAR) = ? THEN 1.0 ELSE 0.0 END AS y, CAST("request_key" % CAST(? AS UBIGINT) AS INTEGER) AS grp, CAST("request_key" >> 8 AS INTEGER) AS model_sample, "amount" FROM predictions_resolved WHERE ("ts" >= ? AND "ts" < ?) AND "prediction" IS NOT NULL AND coalesce("component", 'online') <> 'shadow' AND CAST("region" AS VARCHAR) = ? AND CAST("channel" AS VARCHAR) IN (?, ?)
-- params: [0, 'approved', 64, datetime.datetime(2026, 11, 2, 0, 0), datetime.datetime(2026, 11, 9, 0, 0), 'eu', 'app', 'web', 1, 'approved', 64, datetime.datetime(2026, 11, 9, 0, 0), datetime.datetime(2026, 11, 16, 0, 0), 'eu', 'app', 'web']
