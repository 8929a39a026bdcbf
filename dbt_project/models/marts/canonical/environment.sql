with

environments as (

    select * from {{ ref('stg_zephyr__environments') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        environment_id,
        project_key::varchar as project_key,
        project_id::varchar as project_id,
        coalesce(environment_name, '')::varchar as name,
        environment_description::text as description,
        environment_index,
        is_archived,
        _loaded_at
    from environments
    where environment_id is not null

)

select * from final
