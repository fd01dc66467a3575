/* Placeholder until tickq-beat lands. */
int main(void)
{
    return 1;
}
