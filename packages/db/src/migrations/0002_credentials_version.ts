/**
 * A password change must end every session opened with the old password, including logins
 * that verified it while the change was committing. Each user has a credentials version,
 * bumped in the statement that changes the password; each family is stamped with the version
 * its login verified (the insert only happens while that version is still current), and every
 * refresh compares the two. Existing rows start at 1 on both sides.
 */
export const credentialsVersionSchema = `
ALTER TABLE users ADD COLUMN credentials_version integer NOT NULL DEFAULT 1;
ALTER TABLE families ADD COLUMN credentials_version integer NOT NULL DEFAULT 1;
`;
