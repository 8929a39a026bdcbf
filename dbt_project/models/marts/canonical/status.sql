with

statuses as (

    select * from {{ ref('stg_zephyr__statuses') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        status_id,
        project_key::varchar as project_key,
        project_id::varchar as project_id,
        coalesce(status_name, '')::varchar as name,
        status_description::text as description,
        (case
            when status_type in ('TEST_CASE', 'TEST_PLAN', 'TEST_CYCLE', 'TEST_EXECUTION') then status_type
        end)::varchar as status_type,
        status_index,
        color::varchar as color,
        is_archived,
        is_default,
        _loaded_at
    from statuses
    where status_id is not null

)

select * from final
