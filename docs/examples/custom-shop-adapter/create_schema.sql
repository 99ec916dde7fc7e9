-- A real shop: stocksync creates nothing here (pipeline.apply_schema runs this file).
SELECT 1
