-- One row per custom field value of every object that carries customFields (test cases, their inline
-- steps, cycles, plans, executions). Zephyr sends them as a map keyed by the field's display name.

with

test_cases as (

    select * from {{ ref('stg_zephyr__test_cases') }}

),

test_steps as (

    select * from {{ ref('stg_zephyr__test_steps') }}

),

test_cycles as (

    select * from {{ ref('stg_zephyr__test_cycles') }}

),

test_plans as (

    select * from {{ ref('stg_zephyr__test_plans') }}

),

test_executions as (

    select * from {{ ref('stg_zephyr__test_executions') }}

),

objects as (

    select
        project_key,
        'TestCase' as object_type,
        test_case_id as object_id,
        test_case_key as object_key,
        custom_fields,
        _loaded_at
    from test_cases

    union all

    select
        project_key,
        'TestStep' as object_type,
        step_id as object_id,
        step_key as object_key,
        custom_fields,
        _loaded_at
    from test_steps

    union all

    select
        project_key,
        'TestCycle' as object_type,
        test_cycle_id as object_id,
        test_cycle_key as object_key,
        custom_fields,
        _loaded_at
    from test_cycles

    union all

    select
        project_key,
        'TestPlan' as object_type,
        test_plan_id as object_id,
        test_plan_key as object_key,
        custom_fields,
        _loaded_at
    from test_plans

    union all

    select
        project_key,
        'TestExecution' as object_type,
        test_execution_id as object_id,
        coalesce(test_execution_key, test_execution_id::text) as object_key,
        custom_fields,
        _loaded_at
    from test_executions

),

unnested as (

    select
        objects.project_key,
        objects.object_type,
        objects.object_id,
        objects.object_key,
        fields.key as field_name,
        fields.value as field_value_json,
        objects._loaded_at
    from objects
    cross join lateral jsonb_each(objects.custom_fields) as fields

)

select * from unnested
