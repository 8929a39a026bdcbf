-- One row per custom field value of every object that carries customFields (test cases, their inline
-- steps, cycles, plans, executions): Zephyr sends them as a map keyed by the field's display name.
-- Each object keeps the identity its own staging model gives it (the step surrogate id included).

with

test_cases as (

    select * from {{ source('zephyr', 'test_cases') }}

),

test_steps as (

    select * from {{ source('zephyr', 'test_steps') }}

),

test_cycles as (

    select * from {{ source('zephyr', 'test_cycles') }}

),

test_plans as (

    select * from {{ source('zephyr', 'test_plans') }}

),

test_executions as (

    select * from {{ source('zephyr', 'test_executions') }}

),

objects as (

    select
        project_key,
        'TestCase' as object_type,
        id as object_id,
        key as object_key,
        payload -> 'customFields' as custom_fields,
        extracted_at
    from test_cases

    union all

    select
        project_key,
        'TestStep' as object_type,
        {{ id_or_surrogate('id', 'key') }} as object_id,
        key as object_key,
        payload -> 'inline' -> 'customFields' as custom_fields,
        extracted_at
    from test_steps

    union all

    select
        project_key,
        'TestCycle' as object_type,
        id as object_id,
        key as object_key,
        payload -> 'customFields' as custom_fields,
        extracted_at
    from test_cycles

    union all

    select
        project_key,
        'TestPlan' as object_type,
        id as object_id,
        key as object_key,
        payload -> 'customFields' as custom_fields,
        extracted_at
    from test_plans

    union all

    select
        project_key,
        'TestExecution' as object_type,
        id as object_id,
        coalesce(key, id::text) as object_key,
        payload -> 'customFields' as custom_fields,
        extracted_at
    from test_executions

),

renamed as (

    select
        ----------  ids
        objects.project_key,
        objects.object_type,
        objects.object_id,
        objects.object_key,

        ----------  the field
        fields.key as field_name,
        fields.value as field_value_json,

        ----------  bookkeeping
        objects.extracted_at at time zone 'UTC' as _loaded_at

    from objects
    cross join lateral jsonb_each({{ json_object('objects.custom_fields') }}) as fields

)

select * from renamed
