with

source as (

    select * from {{ source('zephyr', 'test_steps') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        -- Zephyr's step id (2026 API); older tenants give none: then a surrogate from the key.
        {{ id_or_surrogate('source.id', 'source.key') }} as step_id,
        source.id is null as is_surrogate_id,
        source.key as step_key,
        source.parent_key as test_case_key,
        source.position as step_order,
        step_call."testCaseKey" as called_test_case_key,

        ----------  kind: exactly one of inline / testCase
        case
            when jsonb_typeof(payload."testCase") = 'object' then 'call_to_test'
            when jsonb_typeof(payload.inline) = 'object' then 'inline'
        end as step_type,

        ----------  text
        step_inline.description as step_description,
        step_inline."testData" as test_data,
        step_inline."expectedResult" as expected_result,
        step_inline."reflectRef" as reflect_ref,

        ----------  collections (unnested in the marts)
        {{ json_object('step_inline."customFields"') }} as custom_fields,
        {{ json_array('step_call.parameters') }} as call_parameters,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        inline jsonb,
        "testCase" jsonb
    )
    cross join lateral {{ json_fields('payload.inline') }} as step_inline (
        description text,
        "testData" text,
        "expectedResult" text,
        "reflectRef" text,
        "customFields" jsonb
    )
    cross join lateral {{ json_fields('payload."testCase"') }} as step_call (
        "testCaseKey" text,
        parameters jsonb
    )

)

select * from renamed
