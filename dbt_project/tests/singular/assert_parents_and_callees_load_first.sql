-- load_order puts parents before children (modules, cycles) and callees before the cases that link them
-- (test cases; a call left unlinked to break a call cycle is no link), except below a call chain deeper
-- than call_depth_cap, reported in mapping_issue. Releases are published before every cycle
-- (their own kind, first in the stage), so a cycle under a release needs no later level.

with

modules as (

    select * from {{ ref('qtest_modules') }}
    where project_key = '{{ zephyr_project_key() }}'

),

cycles as (

    select * from {{ ref('qtest_test_cycles') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cases as (

    select * from {{ ref('qtest_test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_steps as (

    select * from {{ ref('qtest_test_steps') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and linked_test_case_source_key is not null

),

module_violations as (

    select
        'module' as kind,
        children.source_key,
        parents.source_key as must_come_after
    from modules as children
    inner join modules as parents
        on children.parent_source_key = parents.source_key
    where parents.load_order >= children.load_order

),

cycle_violations as (

    select
        'test_cycle' as kind,
        children.source_key,
        parents.source_key as must_come_after
    from cycles as children
    inner join cycles as parents
        on children.parent_source_key = parents.source_key
    where
        parents.load_order >= children.load_order
        and parents.qtest_object_type <> 'release'

),

call_violations as (

    select distinct
        'test_case' as kind,
        callers.source_key,
        callees.source_key as must_come_after
    from test_steps
    inner join test_cases as callers
        on test_steps.parent_source_key = callers.source_key
    inner join test_cases as callees
        on test_steps.linked_test_case_source_key = callees.source_key
    where
        callees.load_order >= callers.load_order
        and coalesce(callers.mapping_issue, '') not like 'call-to-test chain deeper than call_depth_cap%'

)

select * from module_violations
union all
select * from cycle_violations
union all
select * from call_violations
