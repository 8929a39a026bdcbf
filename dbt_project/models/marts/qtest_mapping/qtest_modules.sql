-- Zephyr TEST_CASE folders -> qTest modules, parents first (load_order = depth in the tree), plus the
-- root module named var('automation_folder_name') when the project has automation runs: qTest's bulk
-- auto-test-logs endpoint makes its module_names into modules too, so it is created (and accounted for)
-- here. It stays empty: the endpoint finds the cases by Automation Content and never moves them.

with

-- The test-case folders placed in their tree (depth, placed_parent_folder_id, mapping_issue).
placed_folders as (

    {{ folder_tree(ref('folder'), 'TEST_CASE') }}

),

automation_runs as (

    select
        project_key,
        max(_loaded_at) as _loaded_at
    from {{ ref('qtest_test_runs') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and automation_module_names is not null
    group by project_key

),

final as (

    select
        project_key::varchar as project_key,
        ('folder:' || folder_id)::varchar as source_key,
        ('folder:' || placed_parent_folder_id)::varchar as parent_source_key,
        folder_id,
        coalesce(nullif(name, ''), 'Folder ' || folder_id)::varchar as name,
        ('Zephyr folder ' || folder_id)::text as description,
        folder_index as module_order,
        coalesce(depth, 0) as depth,
        coalesce(depth, 0) as load_order,
        mapping_issue::text as mapping_issue,
        {{ payload_hash([
            "'folder:' || placed_parent_folder_id",
            "coalesce(nullif(name, ''), 'Folder ' || folder_id)",
            "'Zephyr folder ' || folder_id",
            "folder_index",
        ]) }}::varchar as payload_hash,
        _loaded_at
    from placed_folders

    union all

    select
        project_key::varchar as project_key,
        ('automation:' || project_key)::varchar as source_key,
        null::varchar as parent_source_key,
        null::bigint as folder_id,
        {{ sql_string(var('automation_folder_name')) }}::varchar as name,
        ({{ sql_string(automation_module_description()) }})::text as description,
        null::integer as module_order,
        0 as depth,
        0 as load_order,
        null::text as mapping_issue,
        {{ payload_hash([
            sql_string(var('automation_folder_name')),
            sql_string(automation_module_description()),
        ]) }}::varchar as payload_hash,
        _loaded_at
    from automation_runs

)

select * from final
