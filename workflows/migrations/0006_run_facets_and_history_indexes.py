"""What a run's calls used (its facets), and the run history's indexes on PostgreSQL: one
per sort, matching the keyset's (key, id) order; the search text's tsvector, GIN-indexed;
one over the facets. The SQL of each key is the one `monitoring/history/selectors.py` queries
with. SQLite (the embedded mode) keeps few runs and filters without them."""

from django.db import migrations, models

INDEXES = {
    "workflows_run_hist_started": "(workspace_id, created_at, id)",
    "workflows_run_hist_workflow": "(workflow_id, created_at, id)",
    "workflows_run_hist_duration": (
        "(workspace_id, (COALESCE(EXTRACT(EPOCH FROM (finished_at - started_at)), 0)), id)"
    ),
    "workflows_run_hist_cost": "(workspace_id, cost, id)",
    "workflows_run_hist_tokens": "(workspace_id, (prompt_tokens + completion_tokens), id)",
    "workflows_run_hist_search": "USING gin (search_vector)",
    "workflows_run_hist_facets": "USING gin (facets jsonb_path_ops)",
}


class PostgresOnly(migrations.RunSQL):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0005_run_forked_from"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="facets",
            field=models.JSONField(blank=True, default=dict),
        ),
        # The tsvector stored beside the text (a generated column, so every writer keeps it
        # current): a page that walks the time index then tests each row's vector instead of
        # parsing its text again. Not in the model: only the history's search reads it.
        PostgresOnly(
            sql=(
                "ALTER TABLE workflows_run ADD COLUMN IF NOT EXISTS search_vector tsvector "
                "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, search_text)) STORED"
            ),
            reverse_sql="ALTER TABLE workflows_run DROP COLUMN IF EXISTS search_vector",
        ),
        *(
            PostgresOnly(
                sql=f"CREATE INDEX IF NOT EXISTS {name} ON workflows_run {columns}",
                reverse_sql=f"DROP INDEX IF EXISTS {name}",
            )
            for name, columns in INDEXES.items()
        ),
    ]
