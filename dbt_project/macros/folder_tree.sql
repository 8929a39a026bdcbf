{#- The folders of one type (TEST_CASE or TEST_CYCLE) of the project being built, placed in their tree:
    a query, for a CTE of its own, with every column of the folder mart and
    - depth: the folder's depth under its root (0 for a root), null when the walk never reached it;
    - placed_parent_folder_id: the parent it is created under, null for a folder placed at the root;
    - mapping_issue: why a folder with a parent was placed at the root instead.
    A root is a folder whose parent is not a folder of the same type in the project. The walk goes down
    from the roots; a parent loop (never reached from a root) or a tree deeper than var('folder_depth_cap')
    stops it instead of hanging it, and those folders are placed at the root and reported.
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

    roots as (

        select folders.*
        from folders
        where not exists (
            select 1
            from folders as parents
            where parents.folder_id = folders.parent_folder_id
        )

    ),

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

    )

    select
        folders.*,
        tree.depth,
        case when tree.depth > 0 then folders.parent_folder_id end as placed_parent_folder_id,
        case
            when tree.folder_id is null
                then 'in a parent loop or deeper than folder_depth_cap; placed at the root'
            when tree.depth = 0 and folders.parent_folder_id is not null
                then 'parent folder ' || folders.parent_folder_id || ' is not a {{ type_name }} folder of the project; placed at the root'
        end as mapping_issue
    from folders
    left join tree
        on folders.folder_id = tree.folder_id
{%- endmacro %}
