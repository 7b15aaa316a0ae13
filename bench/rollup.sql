-- pgbench (-M extended, like m2pg's parameterised reads): the single SQL aggregate equivalent to
-- GET /metrics?name=:re&from=:lo&to=:hi&resolution=:res, run on one database. Same name lookup
-- as m2pg (the metric_names catalogue, then the (name, bucket) index) and the README's rollup
-- rules: count summed, mean and median weighted by count (plain mean without counts), min, max,
-- percentiles as max, last of the latest bucket.
SELECT m.name, date_trunc(:res, m.bucket, 'UTC') AS bucket,
       sum(m.count) AS count,
       coalesce(sum(m.mean * m.count) / nullif(sum(m.count) FILTER (WHERE m.mean IS NOT NULL), 0),
                avg(m.mean)) AS mean,
       coalesce(sum(m.median * m.count) / nullif(sum(m.count) FILTER (WHERE m.median IS NOT NULL), 0),
                avg(m.median)) AS median,
       min(m.min) AS min, max(m.max) AS max, max(m.perc95) AS perc95, max(m.perc99) AS perc99,
       (array_agg(m.last ORDER BY m.bucket DESC) FILTER (WHERE m.last IS NOT NULL))[1] AS last
FROM metrics m
WHERE m.name = ANY (ARRAY(SELECT name FROM metric_names WHERE name ~ :re))
  AND m.bucket >= to_timestamp(:lo) AND m.bucket <= to_timestamp(:hi)
GROUP BY 1, 2
ORDER BY 1, 2;
