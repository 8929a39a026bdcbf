with

folders as (

    select * from {{ ref('stg_zephyr__folders') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        folder_id,
        project_id::varchar as project_id,
        parent_folder_id,
        coalesce(folder_name, '')::varchar as name,
        (case
            when folder_type in ('TEST_CASE', 'TEST_PLAN', 'TEST_CYCLE') then folder_type
        end)::varchar as type,
        null::timestamp as created_at,
        null::timestamp as updated_at,
        project_key::varchar as project_key,
        folder_index,
        _loaded_at
    from folders
    where folder_id is not null

)

select * from final
