with

source as (

    select * from {{ source('zephyr', 'test_scripts') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        {{ id_or_surrogate('source.id', "'script:' || source.parent_key") }} as test_script_id,
        source.id is null as is_surrogate_id,
        source.parent_key as test_case_key,

        ----------  text
        payload.type as script_type,
        payload.text as script_text,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        type text,
        text text
    )

)

select * from renamed
