//! Storing tenants, users and memberships: signup, sign-in's credentials,
//! deleting a tenant. What a tenant is lives in `heliograph_domain::page`.

use heliograph_domain::{EmailAddress, Name, Page, PageId, Role, Slug, Tenant, TenantId, UserId};
use time::OffsetDateTime;

use crate::pages::{PageRow, page_columns, stored_slug};
use crate::{Result, Store, StoreError};

/// A tenant's row, before its slug is checked.
#[derive(sqlx::FromRow)]
struct TenantRow {
    id: uuid::Uuid,
    slug: String,
    name: String,
    created_at: OffsetDateTime,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;
    fn try_from(r: TenantRow) -> Result<Self> {
        Ok(Self {
            id: r.id.into(),
            slug: stored_slug(&r.slug)?,
            name: r.name,
            created_at: r.created_at,
        })
    }
}

/// What signup needs; the password arrives already hashed.
#[derive(Debug)]
pub struct NewSignup {
    /// The company's name.
    pub name: Name,
    /// Tenant and first page slug.
    pub slug: Slug,
    /// The owner's email.
    pub email: EmailAddress,
    /// The owner's argon2id PHC string.
    pub password_hash: String,
    /// Where the signup came from, for the audit log.
    pub ip: Option<String>,
}

/// What signup created.
#[derive(Debug, Clone)]
pub struct SignupRecord {
    /// The new tenant.
    pub tenant: Tenant,
    /// Its owner.
    pub user_id: UserId,
    /// Its first page.
    pub page: Page,
    /// When the address has an account already: that account. The new
    /// owner is then its shadow (see the `abuse_controls` migration), and
    /// the account's owner is to be told that someone tried.
    pub taken_by: Option<UserId>,
}

/// A user's stored credentials, for sign-in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserCredentials {
    /// Identifier.
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: UserId,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Whether the address is verified.
    pub email_verified: bool,
}

impl Store {
    /// Creates a tenant, its owner and its first page in one transaction.
    ///
    /// Cross-tenant by nature: the tenant does not exist yet.
    pub async fn signup(&self, new: NewSignup) -> Result<SignupRecord> {
        let mut tx = self.pool.begin().await?;
        let tenant_id = TenantId::new();
        // The new tenant's rows are written under its own id, as row-level security demands.
        sqlx::query("select set_config('app.tenant_id', $1, true)")
            .bind(tenant_id.to_string())
            .execute(&mut *tx)
            .await?;
        let tenant: TenantRow = sqlx::query_as(
            "insert into tenants (id, slug, name) values ($1, $2, $3)
             returning id, slug, name, created_at",
        )
        .bind(tenant_id.as_uuid())
        .bind(new.slug.as_str())
        .bind(new.name.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let tenant = Tenant::try_from(tenant)?;
        let user_id = UserId::new();
        let inserted: Option<(uuid::Uuid,)> = sqlx::query_as(
            "insert into users (id, email, password_hash) values ($1, $2, $3)
             on conflict (email) where shadow_of is null do nothing returning id",
        )
        .bind(user_id.as_uuid())
        .bind(new.email.as_str())
        .bind(&new.password_hash)
        .fetch_optional(&mut *tx)
        .await?;
        // The address has an account: the new tenant's owner is a shadow of
        // it, answered as a new account is (nobody learns who has one).
        let taken_by = if inserted.is_none() {
            let (account,): (uuid::Uuid,) = sqlx::query_as(
                "select id from users where email = $1::citext and shadow_of is null",
            )
            .bind(new.email.as_str())
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "insert into users (id, email, password_hash, shadow_of) values ($1, $2, $3, $4)",
            )
            .bind(user_id.as_uuid())
            .bind(new.email.as_str())
            .bind(&new.password_hash)
            .bind(account)
            .execute(&mut *tx)
            .await?;
            Some(UserId::from(account))
        } else {
            None
        };
        sqlx::query("insert into memberships (tenant_id, user_id, role) values ($1, $2, $3)")
            .bind(tenant.id.as_uuid())
            .bind(user_id.as_uuid())
            .bind(Role::Owner.as_str())
            .execute(&mut *tx)
            .await?;
        let page: PageRow = sqlx::query_as(concat!(
            "insert into pages (id, tenant_id, slug, name) values ($1, $2, $3, $4) returning ",
            page_columns!()
        ))
        .bind(PageId::new().as_uuid())
        .bind(tenant.id.as_uuid())
        .bind(new.slug.as_str())
        .bind(new.name.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let page = Page::try_from(page)?;
        sqlx::query(
            "insert into audit_log (tenant_id, actor_type, actor_id, action, object_type, object_id, ip, details)
             values ($1, 'user', $2, 'tenant.created', 'tenant', $1, $3, jsonb_build_object('slug', $4::text))",
        )
        .bind(tenant.id.as_uuid())
        .bind(user_id.as_uuid())
        .bind(new.ip.as_deref())
        .bind(new.slug.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SignupRecord {
            tenant,
            user_id,
            page,
            taken_by,
        })
    }

    /// Deletes a tenant and everything it owns.
    pub async fn delete_tenant(&self, tenant: TenantId) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query("delete from tenants where id = $1")
            .bind(tenant.as_uuid())
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await
    }

    /// The stored credentials of the account with this email, if any
    /// (never a shadow: see [`SignupRecord::taken_by`]).
    pub async fn user_credentials(&self, email: &EmailAddress) -> Result<Option<UserCredentials>> {
        Ok(sqlx::query_as(
            "select id, password_hash, email_verified_at is not null as email_verified
               from users where email = $1::citext and shadow_of is null",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The tenant with this slug, if any.
    pub async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>> {
        let row: Option<TenantRow> =
            sqlx::query_as("select id, slug, name, created_at from hg_tenant_by_slug($1)")
                .bind(slug.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(Tenant::try_from).transpose()
    }
}
