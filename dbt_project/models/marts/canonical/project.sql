with

projects as (

    select * from {{ ref('stg_zephyr__projects') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        project_id::varchar as project_id,
        project_key::varchar as project_key,
        -- Zephyr's API has no project name: the key stands in for it.
        project_key::varchar as name,
        null::text as description,
        null::timestamp as created_at,
        null::timestamp as updated_at,
        project_id as zephyr_project_id,
        jira_project_id,
        is_enabled,
        _loaded_at
    from projects
    where project_id is not null

)

select * from final
