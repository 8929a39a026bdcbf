{#- The project a run builds: var('project_key'), checked against Zephyr's key pattern because it is
    written into SQL (a var cannot be a bind parameter). -#}
{% macro zephyr_project_key() -%}
    {%- set key = var('project_key', none) -%}
    {%- if execute and (key is none or not modules.re.match('^[A-Z][A-Z_0-9]+$', key | string)) -%}
        {{ exceptions.raise_compiler_error(
            "var('project_key') must be a Zephyr project key like SHOP (pattern [A-Z][A-Z_0-9]+), got "
            ~ (key | string) ~ ". Run e.g.: dbt build --vars '{\"project_key\": \"SHOP\"}'"
        ) }}
    {%- endif -%}
    {{- return(key | string if key is not none else '') -}}
{%- endmacro %}


{#- Pre-hook of every mart: on an incremental run, remove the project's rows first. It runs inside the
    model's transaction, so the removal and the insert of the new rows commit together; a project that
    now has no rows of a kind ends with none. When the table holds no other project's rows, TRUNCATE
    (transactional in PostgreSQL) replaces the DELETE: it leaves no dead rows behind. -#}
{% macro delete_project_rows() -%}
    {%- if is_incremental() -%}
        do $zq$
        begin
            if exists (select 1 from {{ this }} where project_key <> '{{ zephyr_project_key() }}') then
                delete from {{ this }} where project_key = '{{ zephyr_project_key() }}';
            else
                truncate table {{ this }};
            end if;
        end
        $zq$
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of every mart: an index on project_key (the per-project delete and every per-project read
    use it). On canonical.project it is the migration plan's idx_project_key. -#}
{% macro create_project_key_index() -%}
    {%- set name = 'idx_project_key' if this.identifier == 'project' else 'idx_' ~ this.identifier ~ '_project_key' -%}
    create index if not exists {{ name }} on {{ this }} (project_key)
{%- endmacro %}


{#- A named index as a post-hook (the migration plan's names). -#}
{% macro create_index(name, columns) -%}
    create index if not exists {{ name }} on {{ this }} ({{ columns | join(', ') }})
{%- endmacro %}
