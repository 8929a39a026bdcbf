with

source as (

    select * from {{ source('zephyr', 'test_case_versions') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as test_case_version_id,
        source.parent_key as test_case_key,
        source.position as version_number,

        ----------  text
        payload.name,
        payload.objective,
        payload.precondition,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        name text,
        objective text,
        precondition text
    )

)

select * from renamed
