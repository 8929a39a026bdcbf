with

source as (

    select * from {{ source('zephyr', 'priorities') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as priority_id,
        payload.project ->> 'id' as project_id,

        ----------  text
        payload.name as priority_name,
        payload.description as priority_description,
        payload.color,

        ----------  numbers
        {{ json_int('payload.index') }} as priority_index,

        ----------  booleans
        {{ json_bool('payload."default"') }} as is_default,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        project jsonb,
        name text,
        description text,
        color text,
        index jsonb,
        "default" jsonb
    )

)

select * from renamed
