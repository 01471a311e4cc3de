-- 0008: reserved for the observability branch's migration, which lands
-- separately; this placeholder only keeps the versions gap-free until then.
-- Delete this file when that branch's 0008 is merged (the loader refuses two
-- files with one version, so the merge cannot miss it).
SELECT 1;
