with

test_cases as (

    select * from {{ ref('stg_zephyr__test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_plans as (

    select * from {{ ref('stg_zephyr__test_plans') }}
    where project_key = '{{ zephyr_project_key() }}'

),

labelled as (

    select
        project_key,
        'TestCase' as object_type,
        test_case_id as object_id,
        test_case_key as object_key,
        labels,
        _loaded_at
    from test_cases
    where test_case_id is not null

    union all

    select
        project_key,
        'TestPlan' as object_type,
        test_plan_id as object_id,
        test_plan_key as object_key,
        labels,
        _loaded_at
    from test_plans
    where test_plan_id is not null

),

final as (

    select
        labelled.object_type::varchar as object_type,
        labelled.object_id,
        label.ordinality::integer as label_order,
        (label.value #>> '{}')::varchar as label,
        labelled.object_key::varchar as object_key,
        labelled.project_key::varchar as project_key,
        labelled._loaded_at
    from labelled
    cross join lateral jsonb_array_elements(labelled.labels) with ordinality as label
    where jsonb_typeof(label.value) in ('string', 'number', 'boolean')

)

select * from final
