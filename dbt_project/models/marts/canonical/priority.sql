with

priorities as (

    select * from {{ ref('stg_zephyr__priorities') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        priority_id,
        project_key::varchar as project_key,
        project_id::varchar as project_id,
        coalesce(priority_name, '')::varchar as name,
        priority_description::text as description,
        priority_index,
        color::varchar as color,
        is_default,
        _loaded_at
    from priorities
    where priority_id is not null

)

select * from final
