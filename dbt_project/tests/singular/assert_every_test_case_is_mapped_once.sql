-- Every canonical test case of the project becomes exactly one qTest test case (cross-model).

with

test_cases as (

    select key
    from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

mapped as (

    select source_key
    from {{ ref('qtest_test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'

)

select
    test_cases.key,
    mapped.source_key
from test_cases
full outer join mapped
    on test_cases.key = mapped.source_key
where
    test_cases.key is null
    or mapped.source_key is null
