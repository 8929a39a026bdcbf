with

source as (

    select * from {{ source('zephyr', 'test_execution_steps') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        -- Zephyr's step-result id (2026 API); older tenants give none: then a surrogate from the key.
        {{ id_or_surrogate('source.id', 'source.key') }} as test_execution_step_id,
        source.id is null as is_surrogate_id,
        source.key as test_execution_step_key,
        case
            when length(source.parent_key) between 1 and 18
                and translate(source.parent_key, '0123456789', '') = ''
                then source.parent_key::bigint
        end as test_execution_id,
        source.position as step_order,
        {{ json_link_id('step_inline.status') }} as status_id,

        ----------  text
        step_inline.description as step_description,
        step_inline."testData" as test_data,
        step_inline."expectedResult" as expected_result,
        step_inline."actualResult" as actual_result,
        step_inline."reflectRef" as reflect_ref,

        ----------  numbers
        {{ json_int('step_inline."testDataRowNumber"') }} as test_data_row_number,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields("source.payload -> 'inline'") }} as step_inline (
        description text,
        "testData" text,
        "expectedResult" text,
        "actualResult" text,
        "reflectRef" text,
        "testDataRowNumber" jsonb,
        status jsonb
    )

)

select * from renamed
