-- rate:prediction=approved: value
CASE WHEN "prediction" IS NULL THEN NULL WHEN CAST("prediction" AS STRING) = ? THEN 1.0 ELSE 0.0 END
-- params: ['approved']
-- rate:prediction=approved: valid
"prediction" IS NOT NULL

-- mean:score: value
TRY_CAST("score" AS DOUBLE)
-- params: []
-- mean:score: valid
TRY_CAST("score" AS DOUBLE) IS NOT NULL

-- accuracy: value
CASE WHEN "outcome" IS NULL THEN NULL WHEN CAST("prediction" AS STRING) = CAST("outcome" AS STRING) THEN 1.0 ELSE 0.0 END
-- params: []
-- accuracy: valid
"outcome" IS NOT NULL

-- accuracy:approved=approved: value
CASE WHEN "outcome" IS NULL THEN NULL WHEN (coalesce(CAST("prediction" AS STRING), '') = ?) = (CAST("outcome" AS STRING) = ?) THEN 1.0 ELSE 0.0 END
-- params: ['approved', 'approved']
-- accuracy:approved=approved: valid
"outcome" IS NOT NULL

-- accuracy:approved=1,declined=0: value
CASE WHEN "outcome" IS NULL THEN NULL WHEN (CASE CAST("prediction" AS STRING) WHEN ? THEN ? WHEN ? THEN ? END) = CAST("outcome" AS STRING) THEN 1.0 ELSE 0.0 END
-- params: ['approved', '1', 'declined', '0']
-- accuracy:approved=1,declined=0: valid
"outcome" IS NOT NULL

-- logloss: value
CASE WHEN (lower(CAST("outcome" AS STRING)) IN ('1', '1.0', 'true')) THEN -ln(least(greatest(TRY_CAST("score" AS DOUBLE), 1e-15), 0.999999999999999)) ELSE -ln(1 - least(greatest(TRY_CAST("score" AS DOUBLE), 1e-15), 0.999999999999999)) END
-- params: []
-- logloss: valid
"outcome" IS NOT NULL AND TRY_CAST("score" AS DOUBLE) IS NOT NULL

-- logloss:approved: value
CASE WHEN (CAST("outcome" AS STRING) = ?) THEN -ln(least(greatest(TRY_CAST("score" AS DOUBLE), 1e-15), 0.999999999999999)) ELSE -ln(1 - least(greatest(TRY_CAST("score" AS DOUBLE), 1e-15), 0.999999999999999)) END
-- params: ['approved']
-- logloss:approved: valid
"outcome" IS NOT NULL AND TRY_CAST("score" AS DOUBLE) IS NOT NULL
