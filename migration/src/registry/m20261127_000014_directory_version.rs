use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// `directory_version`: one row whose `version` goes up with every change
/// to `tenants`, in the same transaction, by triggers (so a change made by
/// any instance, the CLI or by hand counts). An instance that read the
/// version within its cache time, and finds it where it was when it read a
/// company, knows that company's row is unchanged without reading it.
/// A later migration that rebuilds `tenants` on SQLite (its way of altering
/// a column) drops these triggers with the table and must create them again.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE TABLE directory_version (
                         id SMALLINT PRIMARY KEY CHECK (id = 1),
                         version BIGINT NOT NULL
                     );
                     INSERT INTO directory_version (id, version) VALUES (1, 0);
                     CREATE FUNCTION bump_directory_version() RETURNS trigger
                         LANGUAGE plpgsql AS $$
                     BEGIN
                         UPDATE directory_version SET version = version + 1 WHERE id = 1;
                         RETURN NULL;
                     END $$;
                     CREATE TRIGGER tenants_bump_directory_version
                         AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
                         FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version();",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(
                    "CREATE TABLE directory_version (
                         id INTEGER PRIMARY KEY CHECK (id = 1),
                         version BIGINT NOT NULL
                     );
                     INSERT INTO directory_version (id, version) VALUES (1, 0);",
                )
                .await?;
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER tenants_bump_directory_version_{lower}
                             AFTER {event} ON tenants
                         BEGIN
                             UPDATE directory_version SET version = version + 1 WHERE id = 1;
                         END;",
                        lower = event.to_lowercase(),
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "DROP TRIGGER tenants_bump_directory_version ON tenants;
                     DROP FUNCTION bump_directory_version();
                     DROP TABLE directory_version;",
                )
                .await?;
            }
            _ => {
                for event in ["insert", "update", "delete"] {
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER tenants_bump_directory_version_{event}"
                    ))
                    .await?;
                }
                db.execute_unprepared("DROP TABLE directory_version")
                    .await?;
            }
        }
        Ok(())
    }
}
