-- Zephyr TEST_CASE folders -> qTest modules, parents first (load_order = depth in the tree), plus the
-- root module named var('automation_folder_name') when the project has automation runs: qTest's bulk
-- auto-test-logs endpoint makes its module_names into modules too, so it is created (and accounted for)
-- here. It stays empty: the endpoint finds the cases by Automation Content and never moves them.

with recursive

folders as (

    select * from {{ ref('folder') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and type = 'TEST_CASE'

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

roots as (

    select folders.*
    from folders
    where not exists (
        select 1
        from folders as parents
        where parents.folder_id = folders.parent_folder_id
    )

),

-- Walk down from the roots; a parent loop (never reached from a root) or a tree deeper than the cap
-- stops the walk instead of hanging it.
tree as (

    select
        roots.folder_id,
        0 as depth,
        array[roots.folder_id] as folder_path
    from roots

    union all

    select
        children.folder_id,
        tree.depth + 1 as depth,
        tree.folder_path || children.folder_id as folder_path
    from tree
    inner join folders as children
        on children.parent_folder_id = tree.folder_id
    where
        tree.depth < {{ var('folder_depth_cap') }}
        and not children.folder_id = any(tree.folder_path)

),

placed as (

    select
        folders.*,
        tree.depth,
        case
            when tree.folder_id is null then null
            when tree.depth > 0 then folders.parent_folder_id
        end as placed_parent_folder_id,
        case
            when tree.folder_id is null
                then 'in a parent loop or deeper than folder_depth_cap; placed at the root'
            when tree.depth = 0 and folders.parent_folder_id is not null
                then 'parent folder ' || folders.parent_folder_id || ' is not a test-case folder of the project; placed at the root'
        end as mapping_issue
    from folders
    left join tree
        on folders.folder_id = tree.folder_id

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
    from placed

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
