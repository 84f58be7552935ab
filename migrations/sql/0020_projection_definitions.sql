-- The table definitions each projection's live generation was built with: when the code's
-- differ (a new column, a new table), the projection is rebuilt at start-up instead of the
-- program meeting a read model of the wrong shape.
ALTER TABLE projections ADD COLUMN definition text;
