{#- The folders of one type (TEST_CASE or TEST_CYCLE) of the project being built, placed in their tree:
    a query, for a CTE of its own, with every column of the folder mart and
    - depth: the folder's depth under its root (0 for a root), null when the walk never reached it;
    - placed_parent_folder_id: the parent it is created under, null for a folder placed at the root;
    - mapping_issue: why a folder with a parent was placed at the root instead.
    A root is a folder whose parent is not a folder of the same type in the project (an orphan when it
    names one), or a folder whose parent chain comes back to itself (a parent loop: every folder of the
    loop is placed at the root, its descendants stay under it). The walk goes down from the roots; a tree
    deeper than var('folder_depth_cap') stops it, and the folders below are placed at the root. Every
    folder placed at the root although Zephyr gives it a parent is named in mapping_issue (and unmapped).
    qtest_modules places the test-case folders, qtest_test_cycles the test-cycle folders. -#}
{% macro folder_tree(folder_relation, folder_type) -%}
    {%- set type_name = folder_type | lower | replace('_', '-') -%}
    with recursive

    folders as (

        select * from {{ folder_relation }}
        where
            project_key = '{{ zephyr_project_key() }}'
            and type = '{{ folder_type }}'

    ),

    -- Each folder's parent chain, walked up until it leaves the folders or repeats one: it ends by
    -- itself, parent loops included (a chain never visits a folder twice).
    ascents as (

        select
            folders.folder_id as start_id,
            folders.parent_folder_id as current_id,
            array[folders.folder_id] as folder_path
        from folders

        union all

        select
            ascents.start_id,
            parents.parent_folder_id as current_id,
            ascents.folder_path || parents.folder_id as folder_path
        from ascents
        inner join folders as parents
            on ascents.current_id = parents.folder_id
        where not parents.folder_id = any(ascents.folder_path)

    ),

    -- The folders whose parent chain comes back to themselves, with that loop (from the folder up).
    loop_folders as (

        select
            start_id as folder_id,
            array_to_string(folder_path || start_id, ' -> ') as loop_path
        from ascents
        where current_id = start_id

    ),

    roots as (

        select folders.folder_id
        from folders
        where
            not exists (
                select 1
                from folders as parents
                where parents.folder_id = folders.parent_folder_id
            )
            or exists (
                select 1
                from loop_folders
                where loop_folders.folder_id = folders.folder_id
            )

    ),

    tree as (

        select
            roots.folder_id,
            0 as depth
        from roots

        union all

        select
            children.folder_id,
            tree.depth + 1 as depth
        from tree
        inner join folders as children
            on children.parent_folder_id = tree.folder_id
        where
            tree.depth < {{ var('folder_depth_cap') }}
            -- a folder of a loop is a root of its own, not a child of the folder before it in the loop
            and not exists (
                select 1
                from loop_folders
                where loop_folders.folder_id = children.folder_id
            )

    )

    select
        folders.*,
        tree.depth,
        case when tree.depth > 0 then folders.parent_folder_id end as placed_parent_folder_id,
        case
            when loop_folders.folder_id is not null
                then 'its parent chain is a loop (folders ' || loop_folders.loop_path || '); placed at the root'
            when tree.folder_id is null
                then 'deeper than folder_depth_cap (' || {{ var('folder_depth_cap') }} || '); placed at the root'
            when tree.depth = 0 and folders.parent_folder_id is not null
                then 'parent folder ' || folders.parent_folder_id || ' is not a {{ type_name }} folder of the project; placed at the root'
        end as mapping_issue
    from folders
    left join tree
        on folders.folder_id = tree.folder_id
    left join loop_folders
        on folders.folder_id = loop_folders.folder_id
{%- endmacro %}
