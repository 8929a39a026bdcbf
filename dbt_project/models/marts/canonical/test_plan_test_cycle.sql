-- Zephyr lists each plan <-> cycle link on both ends (plan.links.testCycles, cycle.links.testPlans),
-- with the same link id: one row per link.

with

test_plans as (

    select * from {{ ref('stg_zephyr__test_plans') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cycles as (

    select * from {{ ref('stg_zephyr__test_cycles') }}
    where project_key = '{{ zephyr_project_key() }}'

),

from_plans as (

    select
        test_plans.project_key,
        {{ json_bigint("link.value -> 'id'") }} as link_id,
        test_plans.test_plan_id,
        {{ json_bigint("link.value -> 'testCycleId'") }} as test_cycle_id,
        link.value ->> 'type' as link_type,
        test_plans._loaded_at
    from test_plans
    cross join lateral jsonb_array_elements(test_plans.test_cycle_links) as link

),

from_cycles as (

    select
        test_cycles.project_key,
        {{ json_bigint("link.value -> 'id'") }} as link_id,
        {{ json_bigint("link.value -> 'testPlanId'") }} as test_plan_id,
        test_cycles.test_cycle_id,
        link.value ->> 'type' as link_type,
        test_cycles._loaded_at
    from test_cycles
    cross join lateral jsonb_array_elements(test_cycles.test_plan_links) as link

),

both_ends as (

    select * from from_plans
    union all
    select * from from_cycles

),

links as (

    select
        project_key,
        {{ id_or_surrogate('link_id', "'plan-cycle:' || coalesce(test_plan_id::text, '') || ':' || coalesce(test_cycle_id::text, '')") }}
            as link_id,
        test_plan_id,
        test_cycle_id,
        link_type,
        _loaded_at
    from both_ends
    where
        test_plan_id is not null
        and test_cycle_id is not null

),

deduplicated as (

    select
        link_id,
        min(project_key) as project_key,
        min(test_plan_id) as test_plan_id,
        min(test_cycle_id) as test_cycle_id,
        min(link_type) as link_type,
        max(_loaded_at) as _loaded_at
    from links
    group by link_id

),

final as (

    select
        deduplicated.link_id,
        deduplicated.test_plan_id,
        deduplicated.test_cycle_id,
        test_plans.test_plan_key::varchar as test_plan_key,
        test_cycles.test_cycle_key::varchar as test_cycle_key,
        (case
            when deduplicated.link_type in ('COVERAGE', 'BLOCKS', 'RELATED') then deduplicated.link_type
        end)::varchar as link_type,
        deduplicated.project_key::varchar as project_key,
        deduplicated._loaded_at
    from deduplicated
    left join test_plans
        on deduplicated.test_plan_id = test_plans.test_plan_id
    left join test_cycles
        on deduplicated.test_cycle_id = test_cycles.test_cycle_id

)

select * from final
